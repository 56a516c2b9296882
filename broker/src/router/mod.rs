//! Routing: which sessions receive a PUBLISH, and which retained messages a new subscription
//! receives.
//!
//! - [`SubscriptionTree`] indexes every subscription (shared ones included) in a trie of topic
//!   levels and answers "who gets this topic" without allocating in steady state: it is the
//!   broker's hot path.
//! - [`SharedTree`] shares the tree between threads with a read lock sharded per thread, so
//!   routing on one core never writes a cache line another core's routing writes.
//! - [`RetainedStore`] keeps the last retained message per topic in a trie walked with the
//!   subscription's filter.
//!
//! Both follow the matching rules of section 4.7 (empty levels, '+' one level, '#' the parent
//! and any number of children, no leading wildcard match on '$' topics) and free the nodes they
//! no longer need, so memory follows the live contents.

mod arena;
mod hash;
pub use hash::KeyedHashBuilder;
mod retained;
mod shared;
mod subscribers;
mod tree;

pub use retained::{RetainLimits, RetainRefused, RetainedStore, Weigh};
pub use shared::SharedTree;
pub use tree::{ClientId, Match, MatchRef, MatchVisitor, Subscription, SubscriptionTree};
