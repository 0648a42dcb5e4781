"""The output's metadata: band descriptions, tags, units, scale/offset, colour table.

:func:`output_metadata` checks what ``to_raster`` was given (and what
``like=`` brings) once, before anything is computed, into a
:class:`Metadata` of plain values.  Every writer sets it on a GDAL GeoTIFF
dataset with :meth:`Metadata.apply`: the output itself on GDAL's route, the
tiled intermediate a COG is copied from, and the one-tile file whose IFD an
output of encoded tiles takes its tags from
(:func:`~riomucho_dask.write.tiff.codec.template`).  So GDAL writes it,
the same way on every route, into the file (its ``GDAL_METADATA``,
``ColorMap`` and text tags): nothing goes to an ``.aux.xml`` side-car.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ...errors import ProfileError
from ...read import handles

__all__ = ["Metadata", "output_metadata", "METADATA_KEYS"]

#: Drivers whose metadata GDAL keeps inside the file.
DRIVERS = frozenset({"GTIFF", "COG"})

#: The metadata arguments of ``to_raster`` (and keys of the shim's ``options``).
METADATA_KEYS = ("descriptions", "tags", "band_tags", "units", "scales", "offsets", "colormap")

#: Dtypes a colour table may be given for (GeoTIFF palettes are 8 or 16 bit).
COLORMAP_DTYPES = ("uint8", "uint16")


@dataclass(frozen=True)
class Metadata:
    """What is written besides the pixels, as plain, hashable values.

    ``tags`` the dataset's ``(key, value)`` pairs; ``band_tags`` one tuple of
    pairs per band; ``descriptions`` and ``units`` one text (or None) per
    band; ``scales`` and ``offsets`` one number per band; ``colormap``
    band 1's ``(value, (r, g, b, a))`` entries.  Empty: not set.
    """

    tags: tuple = ()
    band_tags: tuple = ()
    descriptions: tuple = ()
    units: tuple = ()
    scales: tuple = ()
    offsets: tuple = ()
    colormap: tuple = ()

    def __bool__(self) -> bool:
        return any(getattr(self, field.name) for field in fields(self))

    def with_band_tags(self, tags: Sequence[Mapping[str, str]]) -> Metadata:
        """This metadata with ``tags`` (one dict per band) added to each band's
        tags (the band statistics, known once every block is written).

        Examples
        --------
        >>> Metadata(descriptions=("red",)).with_band_tags([{"A": "1"}]).band_tags
        ((('A', '1'),),)
        """
        bands = list(self.band_tags) or [()] * len(tags)
        merged = tuple(tuple({**dict(old), **dict(new)}.items())
                       for old, new in zip(bands, tags, strict=True))
        return replace(self, band_tags=merged)

    def apply(self, dataset: Any) -> None:
        """Set this metadata on ``dataset``, a rasterio dataset open for writing."""
        if self.tags:
            dataset.update_tags(**dict(self.tags))
        for band, tags in enumerate(self.band_tags, 1):
            if tags:
                dataset.update_tags(band, **dict(tags))
        for band, text in enumerate(self.descriptions, 1):
            if text is not None:
                dataset.set_band_description(band, text)
        for band, unit in enumerate(self.units, 1):
            if unit is not None:
                dataset.set_band_unit(band, unit)
        if self.scales:
            dataset.scales = self.scales
        if self.offsets:
            dataset.offsets = self.offsets
        if self.colormap:
            dataset.write_colormap(1, dict(self.colormap))


def _per_band(name: str, values: Any, count: int) -> list:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
        raise ProfileError(f"{name}= needs a list of one value per band ({count}), "
                           f"not {values!r}")
    if len(values) != count:
        raise ProfileError(f"{name}= has {len(values)} values but the output has {count} "
                           f"band{'s' if count != 1 else ''}: {list(values)!r}")
    return list(values)


def _texts(name: str, values: Any, count: int) -> tuple:
    out = _per_band(name, values, count)
    for value in out:
        if value is not None and not isinstance(value, str):
            raise ProfileError(f"{name}= needs texts (or None), not {value!r}")
    return tuple(out)


def _numbers(name: str, values: Any, count: int) -> tuple:
    out = _per_band(name, values, count)
    for value in out:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                not np.isfinite(value):
            raise ProfileError(f"{name}= needs finite numbers, not {value!r}")
    return tuple(float(value) for value in out)


def _tag_items(name: str, tags: Any) -> tuple:
    if not isinstance(tags, Mapping):
        raise ProfileError(f"{name} must be a dict of KEY: value, not {type(tags).__name__} "
                           f"{tags!r}")
    for key in tags:
        if not isinstance(key, str) or not key.strip() or "=" in key:
            raise ProfileError(f"{name} has the key {key!r}: keys are non-empty texts "
                               "without '='")
    return tuple((key, str(value)) for key, value in tags.items())


def _colormap(colormap: Any, count: int, dtype: np.dtype) -> tuple:
    if not isinstance(colormap, Mapping):
        raise ProfileError(f"colormap= must be a dict of value: (r, g, b, a), not "
                           f"{type(colormap).__name__}")
    if dtype.name not in COLORMAP_DTYPES or count != 1:
        raise ProfileError(
            f"colormap= needs a one-band uint8 or uint16 output (a GeoTIFF palette), not "
            f"{count} band{'s' if count != 1 else ''} of {dtype.name}")
    top = np.iinfo(dtype).max
    entries = []
    for value, color in colormap.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
                or not 0 <= value <= top:
            raise ProfileError(f"colormap= has the value {value!r}: values are integers "
                               f"0 to {top} for {dtype.name}")
        if isinstance(color, (str, bytes)) or not isinstance(color, Sequence) \
                or len(color) not in (3, 4) or not all(
                    isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= c <= 255
                    for c in color):
            raise ProfileError(f"colormap= has {color!r} for {value}: colours are "
                               "(r, g, b) or (r, g, b, a), integers 0 to 255")
        entries.append((int(value), tuple(int(c) for c in color) + (255,) * (4 - len(color))))
    return tuple(sorted(entries))


def _from_like(like: Any, count: int, dtype: np.dtype) -> dict:
    """The descriptions, units and colour table of ``like`` that the output
    takes: only when it has the output's band count."""
    path = os.fspath(like)
    with handles.open_dataset(path, what=f"like={path!r}") as src:
        if src.count != count:
            return {}
        found: dict[str, Any] = {}
        descriptions = tuple(text or None for text in src.descriptions)
        if any(descriptions):
            found["descriptions"] = descriptions
        units = tuple(unit or None for unit in src.units)
        if any(units):
            found["units"] = units
        if count == 1 and dtype.name in COLORMAP_DTYPES:
            try:
                colormap = src.colormap(1)
            except ValueError:  # (no colour table)
                colormap = None
            if colormap and np.dtype(src.dtypes[0]) == dtype:  # (the same classes)
                try:
                    found["colormap"] = _colormap(colormap, count, dtype)
                except ProfileError:  # (what like= brings never fails a write)
                    pass
    return found


#: Codecs a GeoTIFF palette cannot go with.
LOSSY = frozenset({"jpeg", "webp", "jxl"})


def palette_allowed(profile: Mapping) -> bool:
    """Whether the output's codec takes a colour table."""
    return str(profile.get("compress", "none")).lower() not in LOSSY


def output_metadata(count: int, dtype: Any, driver: str, like: Any = None, *,
                    descriptions: Any = None, tags: Any = None, band_tags: Any = None,
                    units: Any = None, scales: Any = None, offsets: Any = None,
                    colormap: Any = None, profile: Mapping | None = None,
                    stats: bool = False) -> Metadata:
    """The output's :class:`Metadata`, checked.

    ``like`` (a raster path) brings its band descriptions, units and colour
    table when it has ``count`` bands (a colour table only for a one-band
    uint8 or uint16 output); each argument given replaces what ``like``
    brings for it.

    Raises
    ------
    ProfileError
        An argument of the wrong shape (naming it), or metadata for an output
        other than a GeoTIFF or a COG.

    Examples
    --------
    >>> meta = output_metadata(2, "float32", "GTiff", descriptions=["red", "nir"],
    ...                        tags={"source": "S2"})
    >>> meta.descriptions, meta.tags
    (('red', 'nir'), (('source', 'S2'),))
    >>> output_metadata(2, "float32", "GTiff", descriptions=["red"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    riomucho_dask.errors.ProfileError: descriptions= has 1 values but the output has 2 bands...
    """
    dtype = np.dtype(dtype)
    profile = {key.lower(): value for key, value in (profile or {}).items()}
    given = {name: value for name, value in (
        ("descriptions", descriptions), ("tags", tags), ("band_tags", band_tags),
        ("units", units), ("scales", scales), ("offsets", offsets), ("colormap", colormap),
    ) if value is not None}
    if given and driver.upper() not in DRIVERS:
        raise ProfileError(
            f"{', '.join(f'{name}=' for name in given)}: metadata is written into GeoTIFF "
            f"and COG outputs only (GDAL keeps it in the file), not {driver!r}")
    out: dict[str, Any] = {}
    if like is not None and driver.upper() in DRIVERS:
        out.update(_from_like(like, count, dtype))
        if not palette_allowed(profile):  # (a palette like= brings: left out)
            out.pop("colormap", None)
    if colormap is not None and not palette_allowed(profile):
        raise ProfileError(
            f"colormap=: a colour table cannot go with compress={profile.get('compress')!r} "
            "(a lossy codec: GDAL refuses the palette)")
    if (given or stats) and str(profile.get("profile", "GDALGeoTIFF")).upper() not in (
            "GDALGEOTIFF",):
        raise ProfileError(
            f"{', '.join([*(f'{name}=' for name in given), *(['stats=True'] if stats else [])])}"
            f": profile={profile.get('profile')!r} keeps no GDAL metadata in the file "
            "(GDAL would write it to an .aux.xml beside it): leave profile= out")
    if descriptions is not None:
        out["descriptions"] = _texts("descriptions", descriptions, count)
    if units is not None:
        out["units"] = _texts("units", units, count)
    if scales is not None:
        out["scales"] = _numbers("scales", scales, count)
    if offsets is not None:
        out["offsets"] = _numbers("offsets", offsets, count)
    if tags is not None:
        out["tags"] = _tag_items("tags=", tags)
    if band_tags is not None:
        out["band_tags"] = tuple(
            _tag_items(f"band_tags=[{n}]", {} if band is None else band)
            for n, band in enumerate(_per_band("band_tags", band_tags, count)))
    if colormap is not None:
        out["colormap"] = _colormap(colormap, count, dtype)
    return Metadata(**out)
