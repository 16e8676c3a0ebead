//! Redis Cluster.
