"""Where the bytes go: a local file, part files, an object store's multipart upload."""
