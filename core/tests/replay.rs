//! The core is a function of its inputs: a sequence of inputs recorded
//! while one core runs, written out as JSON and read back, brings a fresh
//! core to the same state through the same effects. This is what lets the
//! broker persist what the core was told and replay it after a crash.
//!
//! The test drives the core only through its public interface,
//! `Core::handle`, with the shared `driver`.

mod driver;

use agora_core::{Input, Timestamp};
use driver::{Driver, fresh_core, step};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_recorded_input_sequence_replays_to_the_same_state_and_effects(
        steps in prop::collection::vec(step(), 1..120),
    ) {
        let mut driver = Driver::new();
        for step in &steps {
            driver.step(step);
        }
        let recorded: Vec<(Timestamp, Input)> = driver
            .log
            .iter()
            .map(|(now, input, _)| (*now, input.clone()))
            .collect();

        let log = serde_json::to_string(&recorded).expect("inputs serialise");
        let replayed: Vec<(Timestamp, Input)> = serde_json::from_str(&log).expect("and read back");
        prop_assert_eq!(&replayed, &recorded);

        let mut again = fresh_core();
        for ((now, input), (_, _, effects)) in replayed.into_iter().zip(&driver.log) {
            prop_assert_eq!(&again.handle(now, input), effects);
        }
        prop_assert_eq!(format!("{again:?}"), format!("{:?}", driver.core));
    }
}
