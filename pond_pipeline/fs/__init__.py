"""The pond's tree: paths, node kinds, snapshots of the oplog, and transactions."""
