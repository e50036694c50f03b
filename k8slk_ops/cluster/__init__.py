"""The cluster as a whole, reached through its nodes: membership, locks, the addon record,
etcd (members, snapshots, restores) and the files kept beside it."""
