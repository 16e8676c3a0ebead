//! Redis Cluster: the product cache, idempotency records and the alarm relay
//! work on three primaries. Every key a script or a multi-key command
//! touches together shares a hash tag, so each such call is on one node.

use mp_gateway::alarms::AlarmKeys;

use crate::alarm_relay::{
    callback_into_one_replica_reaches_another, resume_from_a_lost_id_is_out_of_range,
    resume_gets_what_was_missed,
};
use crate::idempotency::fifty_orders_with_one_request_id_order_once;
use crate::product_cache::gateways_starting_together_fetch_once;
use crate::support::{ClusterTopology, unique_prefix};

#[tokio::test]
async fn product_cache_replicas_fetch_once_on_a_cluster() {
    let cluster = ClusterTopology::start().await;
    gateways_starting_together_fetch_once(cluster.config(&unique_prefix("cluster-cache"))).await;
}

#[tokio::test]
async fn idempotency_orders_once_on_a_cluster() {
    let cluster = ClusterTopology::start().await;
    fifty_orders_with_one_request_id_order_once(cluster.config(&unique_prefix("cluster-orders")))
        .await;
}

#[tokio::test]
async fn alarms_cross_replicas_and_resume_on_a_cluster() {
    let cluster = ClusterTopology::start().await;
    let keys = AlarmKeys::new(&unique_prefix("cluster-slots"));
    assert_eq!(
        cluster.key_slot(&keys.stream).await,
        cluster
            .key_slot(&format!("{}an-alarm", keys.dedup_prefix))
            .await,
        "the publish script's two keys are in one slot"
    );
    callback_into_one_replica_reaches_another(cluster.config(&unique_prefix("cluster-relay")))
        .await;
    resume_gets_what_was_missed(Some(cluster.config(&unique_prefix("cluster-resume")))).await;
    resume_from_a_lost_id_is_out_of_range(Some(cluster.config(&unique_prefix("cluster-trim"))))
        .await;
}
