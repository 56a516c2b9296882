//! The subscription tree as the broker shares it between threads.
//!
//! Every PUBLISH reads the tree. A reader-writer lock with one lock word makes every reader
//! write that word, so with publishers on several cores the word's cache line moves between
//! cores for every message: readers do not wait for each other, but they still contend.
//! [`SharedTree`] gives each thread a shard of its own to read-lock (crossbeam's
//! `ShardedLock`), so reading the tree touches no line another core writes; a writer (a
//! SUBSCRIBE, an UNSUBSCRIBE, a session ending) takes every shard, which costs subscribe and
//! unsubscribe a few tens of nanoseconds and routing nothing.

use std::sync::PoisonError;

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};

use super::SubscriptionTree;

/// The broker's subscription tree behind a lock sharded per thread.
pub struct SharedTree(ShardedLock<SubscriptionTree>);

impl SharedTree {
    pub fn new(tree: SubscriptionTree) -> SharedTree {
        SharedTree(ShardedLock::new(tree))
    }

    /// Read access, taken on this thread's shard only: any number of threads read at once.
    pub fn read(&self) -> ShardedLockReadGuard<'_, SubscriptionTree> {
        // A writer that panicked left the tree as far as it got; the tree's operations keep
        // it consistent at every step they can panic in (allocation failure aborts instead),
        // so carrying on is what the lock this replaced (parking_lot, no poisoning) did too.
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Exclusive access: waits for every reader on every shard.
    pub fn write(&self) -> ShardedLockWriteGuard<'_, SubscriptionTree> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for SharedTree {
    fn default() -> SharedTree {
        SharedTree::new(SubscriptionTree::new())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;

    use super::*;

    /// Issue #4: the tree is readable by many threads at once, and a writer waits for them.
    #[test]
    fn threads_read_at_once_and_a_writer_waits_for_every_reader() {
        let tree = Arc::new(SharedTree::default());
        let (held, reader_holds) = mpsc::channel();
        let (release, reader_may_go) = mpsc::channel::<()>();
        let reader = {
            let tree = Arc::clone(&tree);
            std::thread::spawn(move || {
                let guard = tree.read();
                held.send(()).unwrap();
                reader_may_go.recv().unwrap();
                guard.len()
            })
        };
        reader_holds.recv().unwrap();
        // Another thread reads while the first still holds its read guard...
        assert_eq!(tree.read().len(), 0);
        // ...but nobody may write until it lets go.
        assert!(tree.0.try_write().is_err());
        release.send(()).unwrap();
        assert_eq!(reader.join().unwrap(), 0);
        assert!(tree.0.try_write().is_ok());
    }
}
