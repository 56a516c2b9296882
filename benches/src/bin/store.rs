//! How long persistence takes (`broker/src/store/`): a broker's state saved to, and loaded
//! from, its data directory, at a size the user picks.
//!
//! One save is what the broker does every autosave interval and once when it stops: copy
//! every retained message and persistent session out of the broker, encode them and write
//! them in one `redb` transaction (with its fsync). One restore is what start-up does: read the
//! file back, decode every record and rebuild the sessions, the subscription tree and the
//! retained messages. The state: `--sessions` persistent sessions, each with one subscription
//! (`fleet/{i}/cmd`) and `--queued` queued QoS 1 messages, and `--retained` retained messages;
//! every payload is `--payload` bytes.
//!
//! ```text
//! cargo run --release -p ferrumq-benches --bin store -- --sessions 100000 --retained 100000
//! ```

use std::time::Instant;

use bytes::Bytes;
use clap::Parser;
use ferrumq_broker::codec::{ByteString, EncodeError, ProtocolVersion, PublishProperties, QoS};
use ferrumq_broker::config::BrokerConfig;
use ferrumq_broker::pool::MessageRef;
use ferrumq_broker::router::Subscription;
use ferrumq_broker::server::{AttachParams, Broker};
use ferrumq_broker::session::{Message, Outgoing, SessionLink, SubscriptionIds};
use ferrumq_broker::store::{Store, FILE_NAME};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    #[arg(long, default_value_t = 1)]
    queued: usize,
    #[arg(long, default_value_t = 10_000)]
    retained: usize,
    #[arg(long, default_value_t = 256)]
    payload: usize,
}

fn message(
    topic: String,
    payload: &Bytes,
    qos: QoS,
    retain: bool,
) -> Result<MessageRef, EncodeError> {
    Message::pooled(
        ByteString::from(topic),
        qos,
        retain,
        payload.clone(),
        PublishProperties::default(),
        Some(ByteString::from_static("bench")),
        Instant::now(),
    )
}

/// A broker holding the state `args` describe, its sessions detached as after their clients
/// left.
fn populated(args: &Args) -> Result<std::sync::Arc<Broker>, Box<dyn std::error::Error>> {
    let mut config = BrokerConfig::default();
    // Room for every retained message asked for, whatever the default limits.
    config.settings.limits.max_retained_messages = u32::try_from(args.retained)?.max(1);
    config.settings.limits.max_retained_bytes = u64::MAX;
    let broker = Broker::new(config)?;
    let payload = Bytes::from(vec![0x5a; args.payload]);
    for i in 0..args.sessions {
        let client_id = ByteString::from(format!("device-{i}"));
        let attached = broker.attach(
            &client_id,
            AttachParams {
                clean_start: true,
                expiry_interval: 86_400,
                version: ProtocolVersion::V5,
                receive_maximum: 16,
                maximum_packet_size: u32::MAX,
                acl: None,
            },
        );
        let filter = format!("fleet/{i}/cmd");
        let subscription = Subscription {
            options: Default::default(),
            identifier: None,
            session: SessionLink::default(),
        };
        broker.router.write().subscribe(
            &filter,
            &client_id,
            Subscription {
                session: SessionLink::to(&attached.session),
                ..subscription.clone()
            },
        );
        let mut st = attached.session.state.lock();
        st.subscriptions.insert(filter.clone(), subscription);
        for _ in 0..args.queued {
            st.queue.push_back(Outgoing {
                message: message(filter.clone(), &payload, QoS::AtLeastOnce, false)?,
                qos: QoS::AtLeastOnce,
                retain: false,
                subscription_ids: SubscriptionIds::None,
                shared_group: None,
            });
        }
        st.attached = None;
        st.disconnected_at = Some(Instant::now());
    }
    for i in 0..args.retained {
        broker.retain(&message(
            format!("status/{i}"),
            &payload,
            QoS::AtMostOnce,
            true,
        )?)?;
    }
    Ok(broker)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("ferrumq-store-bench-{}", std::process::id()));
    let broker = populated(&args)?;
    let store = Store::open(&dir)?;
    let started = Instant::now();
    let saved = store.save(&broker)?;
    let save_time = started.elapsed();
    drop(store);
    let size = std::fs::metadata(dir.join(FILE_NAME)).map_or(0, |m| m.len());

    let fresh = Broker::new(BrokerConfig::default())?;
    let store = Store::open(&dir)?;
    let started = Instant::now();
    let restored = store.restore(&fresh)?;
    let restore_time = started.elapsed();
    if (restored.sessions, restored.retained) != (saved.sessions, saved.retained) {
        return Err(format!("saved {saved:?} but restored {restored:?}").into());
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "{{\"sessions\":{},\"queued_per_session\":{},\"retained\":{},\"payload\":{},\"save_ms\":{:.1},\"restore_ms\":{:.1},\"file_bytes\":{}}}",
        saved.sessions,
        args.queued,
        saved.retained,
        args.payload,
        save_time.as_secs_f64() * 1e3,
        restore_time.as_secs_f64() * 1e3,
        size
    );
    Ok(())
}
