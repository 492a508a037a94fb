"""Where a pond's bytes live: the Delta oplog, content-addressed blobs, the write lock."""
