"""The output, decided once from the array, ``like=``, the profile and the
keywords, and checked before anything is computed."""
