//! Sleeping connections by token, stored inline in fixed pages.
//!
//! A sleeping connection is kept in a slot of a page of [`PAGE`] slots, not in an allocation
//! of its own: no allocator header per connection, no pointer to it, and no small allocation
//! left between longer-lived ones when it wakes (the holes such allocations leave were a
//! fifth of an idle connection's resident memory). Pages are never freed, so a slot's address
//! stays put; vacant slots are reused first.
//!
//! A token is the slot's index and the slot's generation, which changes every time the slot
//! is emptied: a wake or an event for a connection that has woken already finds another
//! generation and does nothing, even when the slot holds another connection by then.

/// Slots per page.
const PAGE: usize = 256;

/// One slot: its generation and the connection asleep in it, if any.
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Values (sleeping connections) by token.
pub(super) struct Sleepers<T> {
    pages: Vec<Box<[Slot<T>]>>,
    vacant: Vec<u32>,
}

impl<T> Default for Sleepers<T> {
    fn default() -> Self {
        Sleepers {
            pages: Vec::new(),
            vacant: Vec::new(),
        }
    }
}

/// A slot's index and generation in one word (what `mio` and the waker carry).
pub(super) fn token(index: u32, generation: u32) -> usize {
    (u64::from(generation) << 32 | u64::from(index)) as usize
}

fn split(token: usize) -> (usize, u32) {
    let token = token as u64;
    ((token & u64::from(u32::MAX)) as usize, (token >> 32) as u32)
}

impl<T> Sleepers<T> {
    /// Puts `value` in a vacant slot; returns its token.
    pub(super) fn insert(&mut self, value: T) -> usize {
        let index = match self.vacant.pop() {
            Some(index) => index as usize,
            None => {
                let index = self.pages.len() * PAGE;
                let page = (0..PAGE)
                    .map(|_| Slot {
                        generation: 0,
                        value: None,
                    })
                    .collect();
                self.pages.push(page);
                // The rest of the new page, lowest index last so it is used first.
                self.vacant
                    .extend((index + 1..index + PAGE).rev().map(|i| i as u32));
                index
            }
        };
        let slot = &mut self.pages[index / PAGE][index % PAGE];
        slot.value = Some(value);
        token(index as u32, slot.generation)
    }

    /// Whether `token`'s value is still in its slot.
    pub(super) fn contains(&self, token: usize) -> bool {
        self.slot(token).is_some_and(|slot| slot.value.is_some())
    }

    /// Takes `token`'s value out, if it is still there, and makes the slot vacant.
    pub(super) fn remove(&mut self, token: usize) -> Option<T> {
        let (index, generation) = split(token);
        let slot = self.pages.get_mut(index / PAGE)?.get_mut(index % PAGE)?;
        if slot.generation != generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.vacant.push(index as u32);
        Some(value)
    }

    fn slot(&self, token: usize) -> Option<&Slot<T>> {
        let (index, generation) = split(token);
        let slot = self.pages.get(index / PAGE)?.get(index % PAGE)?;
        (slot.generation == generation).then_some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_token_never_reaches_the_next_value_in_its_slot() {
        let mut sleepers = Sleepers::default();
        let first = sleepers.insert("first");
        assert!(sleepers.contains(first));
        assert_eq!(sleepers.remove(first), Some("first"));
        assert_eq!(sleepers.remove(first), None, "taken once");
        let second = sleepers.insert("second");
        assert_eq!(split(second).0, split(first).0, "the slot is reused");
        assert!(!sleepers.contains(first));
        assert_eq!(
            sleepers.remove(first),
            None,
            "an old token finds a new generation"
        );
        assert!(sleepers.contains(second));
        assert_eq!(sleepers.remove(second), Some("second"));
    }

    #[test]
    fn pages_fill_before_new_ones_are_made() {
        let mut sleepers = Sleepers::default();
        let tokens: Vec<usize> = (0..PAGE + 1).map(|i| sleepers.insert(i)).collect();
        assert_eq!(sleepers.pages.len(), 2);
        let indices: Vec<usize> = tokens.iter().map(|&t| split(t).0).collect();
        assert_eq!(indices, (0..PAGE + 1).collect::<Vec<_>>());
        for (i, &t) in tokens.iter().enumerate() {
            assert_eq!(sleepers.remove(t), Some(i));
        }
        assert_eq!(
            sleepers.insert(7),
            token(PAGE as u32, 1),
            "last vacated, first reused"
        );
        assert_eq!(sleepers.pages.len(), 2);
    }
}
