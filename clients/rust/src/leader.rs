//! Finding the leader among a broker's replicas. Several `agora serve`
//! replicas may share one etcd; one leads and the others answer every call
//! UNAVAILABLE, naming the leader when they know it. A search tries the
//! endpoints in turn, goes straight to a leader a standby names, and backs
//! off between rounds until the [`Failover`] deadline.

use std::{
    collections::hash_map::RandomState,
    future::Future,
    hash::{BuildHasher, Hasher},
    time::Duration,
};

use tokio::time::{Instant, sleep, timeout};

use crate::{
    connect::{Client, ConnectOptions, connect_with},
    error::{Error, Tried},
};

/// How long one attempt on one endpoint may take before the next is
/// tried: a frozen replica keeps its socket open and answers nothing.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many leaders named in a row are followed at once; past that the
/// replicas disagree (an election is under way) and the search backs off.
const MAX_HOPS: u32 = 2;

/// The addresses of a broker's replicas, any of which may lead, such as
/// `["http://a:50051", "http://b:50051", "http://c:50051"]`. One address
/// is a broker without replicas, followed across its restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints(Vec<String>);

impl Endpoints {
    /// The replicas at `addresses`, tried in this order.
    pub fn new<S: Into<String>>(addresses: impl IntoIterator<Item = S>) -> Endpoints {
        Endpoints(addresses.into_iter().map(Into::into).collect())
    }
}

impl From<&str> for Endpoints {
    fn from(address: &str) -> Endpoints {
        Endpoints::new([address])
    }
}

impl From<&[&str]> for Endpoints {
    fn from(addresses: &[&str]) -> Endpoints {
        Endpoints::new(addresses.iter().copied())
    }
}

impl<const N: usize> From<&[&str; N]> for Endpoints {
    fn from(addresses: &[&str; N]) -> Endpoints {
        Endpoints::new(addresses.iter().copied())
    }
}

impl From<Vec<String>> for Endpoints {
    fn from(addresses: Vec<String>) -> Endpoints {
        Endpoints(addresses)
    }
}

/// How patiently to look for the leader: for at most `deadline` per
/// search, pausing between rounds over the endpoints from `first_backoff`,
/// doubling up to `max_backoff`, each pause shortened by a random part of
/// up to half so that the frontends of a failed leader do not come back
/// in step. A takeover takes about the store's lease TTL (seconds), so the
/// defaults (30 s, 50 ms to 500 ms) ride out several, and find the new
/// leader within half a second of its election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    deadline: Duration,
    first_backoff: Duration,
    max_backoff: Duration,
}

impl Default for Failover {
    fn default() -> Failover {
        Failover {
            deadline: Duration::from_secs(30),
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
        }
    }
}

impl Failover {
    /// The defaults: 30 s to find a leader, pauses of 50 ms to 500 ms.
    pub fn new() -> Failover {
        Failover::default()
    }

    /// Gives up a search after `deadline` with [`Error::NoLeader`].
    pub fn deadline(mut self, deadline: Duration) -> Failover {
        self.deadline = deadline;
        self
    }

    /// Pauses `first` after the first fruitless round, doubling up to `max`.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Failover {
        self.first_backoff = first;
        self.max_backoff = max.max(first);
        self
    }
}

/// Runs `attempt` with a client of each endpoint in turn until one
/// succeeds; the leader answers, standbys refuse. A standby that names the
/// leader sends the search there at once. Errors other than the broker
/// being away ([`Error::is_unavailable`]) end the search: another replica
/// would refuse the same way. `failed_leader`, the address of a leader just
/// lost, is tried last: it may be frozen, and cost a whole attempt timeout.
/// Returns the address that answered, with its answer.
pub(crate) async fn on_leader<T, F, Fut>(
    endpoints: &Endpoints,
    options: &ConnectOptions,
    failed_leader: Option<&str>,
    mut attempt: F,
) -> Result<(String, T), Error>
where
    F: FnMut(Client) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let failover = options.failover_settings();
    let mut search = Search::new(endpoints, failover, failed_leader)?;
    loop {
        let address = search.next_address();
        let within = search.time_left().min(ATTEMPT_TIMEOUT);
        let tried = async { attempt(connect_with(&address, options).await?).await };
        let error = match timeout(within, tried).await {
            Ok(Ok(value)) => return Ok((address, value)),
            Ok(Err(error)) if !error.is_unavailable() => return Err(error),
            Ok(Err(error)) => error,
            Err(_) => Error::NoAnswer {
                address: address.clone(),
                within,
            },
        };
        search.failed(&address, error).await?;
    }
}

/// Where a search stands: whose turn it is, a leader named by the last
/// standby, and what every endpoint answered.
struct Search {
    /// The endpoints in the order of a round.
    endpoints: Vec<String>,
    failover: Failover,
    deadline: Instant,
    turn: usize,
    round_done: bool,
    named: Option<String>,
    hops: u32,
    backoff: Duration,
    tried: Tried,
}

impl Search {
    fn new(endpoints: &Endpoints, failover: Failover, last: Option<&str>) -> Result<Search, Error> {
        if endpoints.0.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let (lost, others): (Vec<String>, Vec<String>) = endpoints
            .0
            .iter()
            .cloned()
            .partition(|address| Some(address.as_str()) == last);
        Ok(Search {
            endpoints: others.into_iter().chain(lost).collect(),
            failover,
            deadline: Instant::now() + failover.deadline,
            turn: 0,
            round_done: false,
            named: None,
            hops: 0,
            backoff: failover.first_backoff,
            tried: Tried::default(),
        })
    }

    /// The leader a standby just named, else the next endpoint in turn.
    fn next_address(&mut self) -> String {
        if let Some(leader) = self.named.take() {
            return leader;
        }
        let address = self.endpoints[self.turn].clone();
        self.turn = (self.turn + 1) % self.endpoints.len();
        self.round_done |= self.turn == 0;
        address
    }

    fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Records why `address` failed and decides what comes next: the
    /// leader it named at once, or, after a whole round, a pause; the end
    /// once the deadline would pass.
    async fn failed(&mut self, address: &str, error: Error) -> Result<(), Error> {
        let named = error.leader().filter(|leader| leader != address);
        self.tried.record(address, error);
        if let Some(leader) = named {
            self.named = Some(leader);
            if self.hops < MAX_HOPS {
                self.hops += 1;
                return Ok(());
            }
        }
        self.hops = 0;
        if !self.round_done && self.time_left() > Duration::ZERO {
            return Ok(());
        }
        self.round_done = false;
        if self.time_left() <= self.backoff {
            return Err(Error::NoLeader {
                within: self.failover.deadline,
                tried: std::mem::take(&mut self.tried),
            });
        }
        sleep(jittered(self.backoff)).await;
        self.backoff = (self.backoff * 2).min(self.failover.max_backoff);
        Ok(())
    }
}

/// Between half of `pause` and all of it, at random.
fn jittered(pause: Duration) -> Duration {
    // Each `RandomState` is seeded afresh: randomness without a crate.
    let random = RandomState::new().build_hasher().finish();
    let thousandths = u32::try_from(random % 1001).unwrap_or(1000);
    pause / 2 + pause / 2 * thousandths / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_one_address_or_several() {
        assert_eq!(
            Endpoints::from("http://a:1"),
            Endpoints::new(["http://a:1"])
        );
        let three = Endpoints::from(&["http://a:1", "http://b:1", "http://c:1"]);
        assert_eq!(three.0.len(), 3);
        let owned: Vec<String> = three.0.clone();
        let borrowed: Vec<&str> = owned.iter().map(String::as_str).collect();
        assert_eq!(Endpoints::from(&borrowed[..]), three);
        assert_eq!(Endpoints::from(owned), three);
    }

    #[test]
    fn turns_go_round_the_endpoints_and_a_named_leader_jumps_the_queue() {
        let endpoints = Endpoints::from(&["a", "b"]);
        let mut search = Search::new(&endpoints, Failover::new(), None).unwrap();
        assert_eq!(search.next_address(), "a");
        search.named = Some("x".into());
        assert_eq!(search.next_address(), "x");
        assert_eq!(search.next_address(), "b");
        assert!(search.round_done);
        assert_eq!(search.next_address(), "a");
    }

    #[test]
    fn a_leader_just_lost_is_tried_last() {
        let endpoints = Endpoints::from(&["a", "b", "c"]);
        let mut search = Search::new(&endpoints, Failover::new(), Some("a")).unwrap();
        let round: Vec<String> = (0..3).map(|_| search.next_address()).collect();
        assert_eq!(round, ["b", "c", "a"]);
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_naming_every_endpoint_and_why() {
        // Nothing listens on ports 1 and 2 of the loopback.
        let endpoints = Endpoints::from(&["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let failover = Failover::new()
            .deadline(Duration::from_millis(400))
            .backoff(Duration::from_millis(50), Duration::from_millis(100));
        let options = ConnectOptions::new().failover(failover);
        let started = Instant::now();
        let error = on_leader(&endpoints, &options, None, |_| async { Ok(()) })
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        let Error::NoLeader { within, tried } = &error else {
            panic!("expected NoLeader, got {error}");
        };
        assert_eq!(*within, Duration::from_millis(400));
        let addresses: Vec<&str> = tried.iter().map(|(address, _)| address).collect();
        assert_eq!(addresses, ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let message = error.to_string();
        assert!(
            message.contains("http://127.0.0.1:2 (cannot connect"),
            "{message}"
        );
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }

    #[test]
    fn pauses_are_jittered_within_their_upper_half() {
        let pause = Duration::from_millis(500);
        let pauses: Vec<Duration> = (0..50).map(|_| jittered(pause)).collect();
        assert!(pauses.iter().all(|p| *p >= pause / 2 && *p <= pause));
        assert!(pauses.iter().any(|p| *p != pauses[0]), "{pauses:?}");
    }

    #[test]
    fn no_endpoints_is_an_error_of_its_own() {
        let none = Endpoints::new(Vec::<String>::new());
        assert!(matches!(
            Search::new(&none, Failover::new(), None),
            Err(Error::NoEndpoints)
        ));
    }
}
