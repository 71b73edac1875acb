//! Which connection called Mesos when, from the devcluster's record of
//! every scheduler call (`GET /devcluster/calls`): each call carries the
//! `Mesos-Stream-Id` of the connection that sent it, and a SUBSCRIBE opens
//! a connection (a stream). Only one broker may talk to Mesos at a time: a
//! broker that is restarted, or a replica that takes over, subscribes
//! anew, and from then on the connection it replaced must be silent. So
//! the streams, in the order they were opened, must call Mesos in
//! intervals that do not overlap: once a newer stream has sent a call, no
//! older one sends any.

use std::collections::BTreeMap;

use serde_json::Value;

/// One connection of a framework to Mesos.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// Its `Mesos-Stream-Id`.
    pub id: String,
    /// When the master received its SUBSCRIBE, in Unix seconds.
    pub opened: f64,
    /// When the master received its last call, in Unix seconds.
    pub last: f64,
    /// How many calls it sent, its SUBSCRIBE among them.
    pub calls: usize,
}

/// The streams of every framework in the record, and the calls that break
/// their order.
#[derive(Debug, Default)]
pub struct Streams {
    /// The streams in the order their SUBSCRIBE came (framework by
    /// framework; the tests have one).
    pub opened: Vec<Stream>,
    /// Calls of a stream sent after a newer stream of the framework had
    /// called: two connections calling Mesos in the same period.
    pub interleaved: Vec<String>,
    /// Calls on a stream no SUBSCRIBE in the record opened, or on none.
    pub unopened: Vec<String>,
}

impl Streams {
    /// Reads `record` (as `GET /devcluster/calls` serves it), each
    /// framework's calls in the order the master handled them.
    pub fn of(record: &Value) -> Streams {
        let mut streams = Streams::default();
        let frameworks = record["frameworks"].as_object().into_iter().flatten();
        for (_, framework) in frameworks {
            let calls = framework["calls"].as_array().map_or(&[][..], Vec::as_slice);
            streams.take(calls);
        }
        streams
    }

    /// Takes one framework's calls, oldest first.
    fn take(&mut self, calls: &[Value]) {
        // Position in `opened` of each stream of this framework.
        let mut position: BTreeMap<String, usize> = BTreeMap::new();
        // The newest stream that has called so far.
        let mut newest: Option<usize> = None;
        for (n, call) in calls.iter().enumerate() {
            let kind = call["type"].as_str().unwrap_or_default();
            let id = call["stream_id"].as_str();
            let received = call["received"].as_f64().unwrap_or_default();
            if let Some(id) = id
                && kind == "SUBSCRIBE"
                && !position.contains_key(id)
            {
                position.insert(id.to_owned(), self.opened.len());
                self.opened.push(Stream {
                    id: id.to_owned(),
                    opened: received,
                    last: received,
                    calls: 0,
                });
            }
            let Some(&at) = id.and_then(|id| position.get(id)) else {
                let what = format!("call {n}, {kind} at {received:.3}, on stream {id:?}");
                self.unopened.push(what);
                continue;
            };
            let stream = &mut self.opened[at];
            stream.calls += 1;
            stream.last = received;
            match newest {
                Some(newer) if newer > at => {
                    let newer = &self.opened[newer];
                    self.interleaved.push(format!(
                        "call {n}, {kind} at {received:.3}, on stream {} opened at {:.3}, after \
                         stream {} opened at {:.3} had called",
                        self.opened[at].id, self.opened[at].opened, newer.id, newer.opened
                    ));
                }
                _ => newest = Some(at),
            }
        }
    }

    /// The stream of the moment at Unix time `at` (the last opened before
    /// it) and the next one (the first opened at or after it).
    pub fn around(&self, at: f64) -> (Option<&Stream>, Option<&Stream>) {
        let next = self.opened.iter().position(|s| s.opened >= at);
        let current = match next {
            Some(0) => None,
            Some(n) => self.opened.get(n - 1),
            None => self.opened.last(),
        };
        (current, next.map(|n| &self.opened[n]))
    }

    /// The seconds each stream stayed silent before the next one's
    /// SUBSCRIBE: from its last call to the next stream's first. Negative
    /// where two streams overlap.
    pub fn gaps(&self) -> Vec<f64> {
        self.opened
            .windows(2)
            .map(|pair| pair[1].opened - pair[0].last)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(kind: &str, stream: &str, received: f64) -> Value {
        json!({"type": kind, "stream_id": stream, "received": received, "status": 202})
    }

    fn record(calls: Vec<Value>) -> Value {
        json!({"frameworks": {"f1": {"dropped": 0, "calls": calls}}})
    }

    #[test]
    fn streams_that_follow_one_another_pass() {
        let streams = Streams::of(&record(vec![
            call("SUBSCRIBE", "a", 1.0),
            call("ACCEPT", "a", 2.0),
            call("ACKNOWLEDGE", "a", 3.0),
            call("SUBSCRIBE", "b", 5.5),
            call("RECONCILE", "b", 6.0),
        ]));
        assert!(streams.interleaved.is_empty(), "{streams:?}");
        assert!(streams.unopened.is_empty(), "{streams:?}");
        let calls: Vec<usize> = streams.opened.iter().map(|s| s.calls).collect();
        assert_eq!(calls, [3, 2]);
        assert_eq!(streams.gaps(), [2.5]);
        let ids = |(current, next): (Option<&Stream>, Option<&Stream>)| {
            (current.map(|s| s.id.clone()), next.map(|s| s.id.clone()))
        };
        assert_eq!(ids(streams.around(0.5)), (None, Some("a".into())));
        assert_eq!(
            ids(streams.around(4.0)),
            (Some("a".into()), Some("b".into()))
        );
        assert_eq!(
            ids(streams.around(5.5)),
            (Some("a".into()), Some("b".into()))
        );
        assert_eq!(ids(streams.around(9.0)), (Some("b".into()), None));
    }

    #[test]
    fn an_older_stream_calling_after_a_newer_one_is_caught() {
        let streams = Streams::of(&record(vec![
            call("SUBSCRIBE", "a", 1.0),
            call("SUBSCRIBE", "b", 2.0),
            call("ACCEPT", "a", 3.0),
            call("ACCEPT", "b", 4.0),
            call("ACCEPT", "c", 5.0),
        ]));
        assert_eq!(streams.interleaved.len(), 1, "{streams:?}");
        assert!(streams.interleaved[0].contains("ACCEPT at 3.000"));
        assert_eq!(streams.unopened.len(), 1, "{streams:?}");
        assert!(streams.gaps()[0] < 0.0);
    }
}
