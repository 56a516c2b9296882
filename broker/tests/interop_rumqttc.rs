//! Interop with an independent client implementation: the `rumqttc` crate, both its MQTT 3.1.1
//! client (`rumqttc`) and its MQTT 5.0 client (`rumqttc::v5`), against a broker started
//! in-process on an ephemeral port. Connect, subscribe, publish at QoS 0/1/2, receive,
//! retained messages, and the Will on an abnormal close.
mod support;

use std::time::Duration;

use ferrumq_broker::listeners::RunningBroker;
use support::*;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::task::JoinHandle;

/// How long to wait for something rumqttc should deliver.
const WAIT: Duration = Duration::from_secs(5);

mod v4 {
    pub use rumqttc::{
        AsyncClient, ConnectReturnCode, Event, LastWill, MqttOptions, Packet, Publish, QoS,
        SubscribeReasonCode,
    };
}

mod v5 {
    pub use rumqttc::v5::mqttbytes::v5::{
        ConnectReturnCode, LastWill, Packet, Publish, SubscribeReasonCode,
    };
    pub use rumqttc::v5::mqttbytes::QoS;
    pub use rumqttc::v5::{AsyncClient, Event, MqttOptions};
}

/// A rumqttc v4 client whose event loop runs in a task; incoming packets arrive on `rx`.
/// Aborting `task` drops the event loop, and with it the socket, without DISCONNECT.
struct Client4 {
    client: v4::AsyncClient,
    rx: UnboundedReceiver<v4::Packet>,
    task: JoinHandle<()>,
}

impl Client4 {
    async fn connect(broker: &RunningBroker, id: &str, will: Option<v4::LastWill>) -> Client4 {
        let addr = broker.mqtt_addr();
        let mut options = v4::MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30));
        if let Some(will) = will {
            options.set_last_will(will);
        }
        let (client, mut eventloop) = v4::AsyncClient::new(options, 64);
        let (tx, rx) = unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(v4::Event::Incoming(packet)) => {
                        if tx.send(packet).is_err() {
                            return;
                        }
                    }
                    Ok(v4::Event::Outgoing(_)) => {}
                    Err(error) => {
                        eprintln!("rumqttc v4 event loop ended: {error}");
                        return;
                    }
                }
            }
        });
        let mut c = Client4 { client, rx, task };
        match c.next().await {
            v4::Packet::ConnAck(ack) => assert_eq!(ack.code, v4::ConnectReturnCode::Success),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        c
    }

    async fn next(&mut self) -> v4::Packet {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("rumqttc v4: packet in time")
            .expect("rumqttc v4: event loop running")
    }

    /// The next PUBLISH, skipping acknowledgements and PINGRESPs.
    async fn publish(&mut self) -> v4::Publish {
        loop {
            if let v4::Packet::Publish(p) = self.next().await {
                return p;
            }
        }
    }

    async fn subscribe(&mut self, filter: &str, qos: v4::QoS) {
        self.client.subscribe(filter, qos).await.unwrap();
        loop {
            if let v4::Packet::SubAck(ack) = self.next().await {
                assert_eq!(
                    ack.return_codes,
                    vec![v4::SubscribeReasonCode::Success(qos)]
                );
                return;
            }
        }
    }

    /// Publishes and waits for the end of its QoS flow (PUBACK / PUBCOMP).
    async fn publish_acked(&mut self, topic: &str, qos: v4::QoS, retain: bool, payload: &str) {
        self.client
            .publish(topic, qos, retain, payload.as_bytes().to_vec())
            .await
            .unwrap();
        if qos == v4::QoS::AtMostOnce {
            return;
        }
        loop {
            match self.next().await {
                v4::Packet::PubAck(_) if qos == v4::QoS::AtLeastOnce => return,
                v4::Packet::PubComp(_) if qos == v4::QoS::ExactlyOnce => return,
                _ => {}
            }
        }
    }
}

/// The same for the rumqttc v5 client.
struct Client5 {
    client: v5::AsyncClient,
    rx: UnboundedReceiver<v5::Packet>,
    task: JoinHandle<()>,
}

impl Client5 {
    async fn connect(broker: &RunningBroker, id: &str, will: Option<v5::LastWill>) -> Client5 {
        let addr = broker.mqtt_addr();
        let mut options = v5::MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30));
        if let Some(will) = will {
            options.set_last_will(will);
        }
        let (client, mut eventloop) = v5::AsyncClient::new(options, 64);
        let (tx, rx) = unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(v5::Event::Incoming(packet)) => {
                        if tx.send(packet).is_err() {
                            return;
                        }
                    }
                    Ok(v5::Event::Outgoing(_)) => {}
                    Err(error) => {
                        eprintln!("rumqttc v5 event loop ended: {error}");
                        return;
                    }
                }
            }
        });
        let mut c = Client5 { client, rx, task };
        match c.next().await {
            v5::Packet::ConnAck(ack) => assert_eq!(ack.code, v5::ConnectReturnCode::Success),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        c
    }

    async fn next(&mut self) -> v5::Packet {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("rumqttc v5: packet in time")
            .expect("rumqttc v5: event loop running")
    }

    async fn publish(&mut self) -> v5::Publish {
        loop {
            if let v5::Packet::Publish(p) = self.next().await {
                return p;
            }
        }
    }

    async fn subscribe(&mut self, filter: &str, qos: v5::QoS) {
        self.client.subscribe(filter, qos).await.unwrap();
        loop {
            if let v5::Packet::SubAck(ack) = self.next().await {
                assert_eq!(
                    ack.return_codes,
                    vec![v5::SubscribeReasonCode::Success(qos)]
                );
                return;
            }
        }
    }

    async fn publish_acked(&mut self, topic: &str, qos: v5::QoS, retain: bool, payload: &str) {
        self.client
            .publish(topic, qos, retain, payload.as_bytes().to_vec())
            .await
            .unwrap();
        if qos == v5::QoS::AtMostOnce {
            return;
        }
        loop {
            match self.next().await {
                v5::Packet::PubAck(_) if qos == v5::QoS::AtLeastOnce => return,
                v5::Packet::PubComp(_) if qos == v5::QoS::ExactlyOnce => return,
                _ => {}
            }
        }
    }
}

const QOS4: [v4::QoS; 3] = [
    v4::QoS::AtMostOnce,
    v4::QoS::AtLeastOnce,
    v4::QoS::ExactlyOnce,
];
const QOS5: [v5::QoS; 3] = [
    v5::QoS::AtMostOnce,
    v5::QoS::AtLeastOnce,
    v5::QoS::ExactlyOnce,
];

#[tokio::test]
async fn rumqttc_v4_pubsub_at_each_qos() {
    let broker = start().await;
    let mut sub = Client4::connect(&broker, "rq4-sub", None).await;
    sub.subscribe("rq4/#", v4::QoS::ExactlyOnce).await;
    let mut publ = Client4::connect(&broker, "rq4-pub", None).await;
    for qos in QOS4 {
        let payload = format!("v4 at {qos:?}");
        publ.publish_acked(&format!("rq4/{}", qos as u8), qos, false, &payload)
            .await;
        let got = sub.publish().await;
        assert_eq!(got.topic, format!("rq4/{}", qos as u8));
        assert_eq!(
            (&got.payload[..], got.qos, got.retain),
            (payload.as_bytes(), qos, false)
        );
    }
    sub.client.disconnect().await.unwrap();
    publ.client.disconnect().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn rumqttc_v5_pubsub_at_each_qos() {
    let broker = start().await;
    let mut sub = Client5::connect(&broker, "rq5-sub", None).await;
    sub.subscribe("rq5/#", v5::QoS::ExactlyOnce).await;
    let mut publ = Client5::connect(&broker, "rq5-pub", None).await;
    for qos in QOS5 {
        let payload = format!("v5 at {qos:?}");
        let topic = format!("rq5/{}", qos as u8);
        publ.publish_acked(&topic, qos, false, &payload).await;
        let got = sub.publish().await;
        assert_eq!(&got.topic[..], topic.as_bytes());
        assert_eq!(
            (&got.payload[..], got.qos, got.retain),
            (payload.as_bytes(), qos, false)
        );
    }
    sub.client.disconnect().await.unwrap();
    publ.client.disconnect().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn rumqttc_v4_and_v5_talk_to_each_other() {
    let broker = start().await;
    let mut c4 = Client4::connect(&broker, "rqx-4", None).await;
    let mut c5 = Client5::connect(&broker, "rqx-5", None).await;
    c4.subscribe("x/to4", v4::QoS::ExactlyOnce).await;
    c5.subscribe("x/to5", v5::QoS::ExactlyOnce).await;
    for i in 0..3 {
        c4.publish_acked("x/to5", QOS4[i], false, "from v4").await;
        let got = c5.publish().await;
        assert_eq!((&got.payload[..], got.qos), (&b"from v4"[..], QOS5[i]));
        c5.publish_acked("x/to4", QOS5[i], false, "from v5").await;
        let got = c4.publish().await;
        assert_eq!((&got.payload[..], got.qos), (&b"from v5"[..], QOS4[i]));
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn rumqttc_retained_messages() {
    let broker = start().await;
    let mut p4 = Client4::connect(&broker, "rr-p4", None).await;
    p4.publish_acked("ret/v4", v4::QoS::AtLeastOnce, true, "kept by v4")
        .await;
    let mut p5 = Client5::connect(&broker, "rr-p5", None).await;
    p5.publish_acked("ret/v5", v5::QoS::ExactlyOnce, true, "kept by v5")
        .await;

    let mut s4 = Client4::connect(&broker, "rr-s4", None).await;
    s4.subscribe("ret/+", v4::QoS::ExactlyOnce).await;
    let mut got: Vec<(String, v4::QoS, bool)> = Vec::new();
    for _ in 0..2 {
        let p = s4.publish().await;
        got.push((
            String::from_utf8(p.payload.to_vec()).unwrap(),
            p.qos,
            p.retain,
        ));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("kept by v4".to_string(), v4::QoS::AtLeastOnce, true),
            ("kept by v5".to_string(), v4::QoS::ExactlyOnce, true),
        ]
    );

    let mut s5 = Client5::connect(&broker, "rr-s5", None).await;
    s5.subscribe("ret/v4", v5::QoS::AtMostOnce).await;
    let p = s5.publish().await;
    assert_eq!(
        (&p.payload[..], p.qos, p.retain),
        (&b"kept by v4"[..], v5::QoS::AtMostOnce, true)
    );

    // An empty retained message deletes it.
    p5.publish_acked("ret/v4", v5::QoS::AtLeastOnce, true, "")
        .await;
    let mut late = Client4::connect(&broker, "rr-late", None).await;
    late.subscribe("ret/v4", v4::QoS::AtLeastOnce).await;
    match tokio::time::timeout(QUIET, late.publish()).await {
        Err(_) => {}
        Ok(p) => panic!("deleted retained message still sent: {p:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn rumqttc_v4_will_on_abnormal_close() {
    let broker = start().await;
    let mut watcher = Client4::connect(&broker, "rw4-watch", None).await;
    watcher.subscribe("will/rq4", v4::QoS::AtLeastOnce).await;
    let will = v4::LastWill::new("will/rq4", "v4 died", v4::QoS::AtLeastOnce, false);
    let dying = Client4::connect(&broker, "rw4-dying", Some(will)).await;
    dying.task.abort(); // drops the socket without DISCONNECT
    let got = watcher.publish().await;
    assert_eq!(
        (&got.topic[..], &got.payload[..], got.qos),
        ("will/rq4", &b"v4 died"[..], v4::QoS::AtLeastOnce)
    );

    // A clean DISCONNECT discards the Will.
    let will = v4::LastWill::new("will/rq4", "not sent", v4::QoS::AtLeastOnce, false);
    let polite = Client4::connect(&broker, "rw4-polite", Some(will)).await;
    polite.client.disconnect().await.unwrap();
    match tokio::time::timeout(QUIET, watcher.publish()).await {
        Err(_) => {}
        Ok(p) => panic!("Will published after DISCONNECT: {p:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn rumqttc_v5_will_on_abnormal_close() {
    let broker = start().await;
    let mut watcher = Client5::connect(&broker, "rw5-watch", None).await;
    watcher.subscribe("will/rq5", v5::QoS::ExactlyOnce).await;
    let will = v5::LastWill::new("will/rq5", "v5 died", v5::QoS::ExactlyOnce, true, None);
    let dying = Client5::connect(&broker, "rw5-dying", Some(will)).await;
    dying.task.abort();
    let got = watcher.publish().await;
    assert_eq!(
        (&got.topic[..], &got.payload[..], got.qos),
        (&b"will/rq5"[..], &b"v5 died"[..], v5::QoS::ExactlyOnce)
    );
    // Retained, so a later subscriber gets it too.
    let mut late = Client5::connect(&broker, "rw5-late", None).await;
    late.subscribe("will/rq5", v5::QoS::AtLeastOnce).await;
    let got = late.publish().await;
    assert_eq!((&got.payload[..], got.retain), (&b"v5 died"[..], true));
    broker.shutdown().await;
}
