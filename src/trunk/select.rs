//! The order in which a trunk's gateways are tried.
//!
//! Gateways are tried by priority, lowest value first. Within one priority the order is
//! weighted random, as RFC 2782 orders SRV records of equal priority: each next gateway is
//! drawn with probability weight / (sum of the remaining weights). Gateways of weight 0
//! follow every weighted gateway of their priority, in the order given. Down gateways
//! and gateways without a free channel are left out, each with its reason.

use rand::{Rng, RngExt};

use super::GatewayId;
use super::health::Health;
use super::limits::Channels;

/// The state of one gateway that the caller may use for this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: GatewayId,
    pub priority: u32,
    pub weight: u32,
    pub health: Health,
    pub channels: Channels,
}

/// The reason a gateway is not in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The health machine marked it Down.
    Down,
    /// Every channel is in use.
    Full { limit: u32 },
    /// The registry contains no gateway of that id.
    UnknownGateway,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Down => f.write_str("down"),
            SkipReason::Full { limit } => write!(f, "all {limit} channels in use"),
            SkipReason::UnknownGateway => f.write_str("unknown gateway"),
        }
    }
}

/// A gateway left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub id: GatewayId,
    pub reason: SkipReason,
}

/// The result of a selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Gateways to try, first one first.
    pub order: Vec<GatewayId>,
    /// Gateways left out, in the order they were given.
    pub skipped: Vec<Skipped>,
}

/// Orders `candidates` for one call. The result depends only on the input and on the
/// numbers drawn from `rng`, so a seeded generator makes it repeatable.
///
/// A full gateway is judged by the snapshot in its [`Candidate`]; the caller still has to
/// take a channel, which may fail if another call took the last one meanwhile.
pub fn order<R: Rng + ?Sized>(candidates: &[Candidate], rng: &mut R) -> Selection {
    let mut selection = Selection::default();
    let mut usable: Vec<&Candidate> = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        match skip_reason(candidate) {
            Some(reason) => selection.skipped.push(Skipped {
                id: candidate.id.clone(),
                reason,
            }),
            None => usable.push(candidate),
        }
    }

    // A stable sort keeps the given order within a priority, which the weight-0 tail uses.
    usable.sort_by_key(|candidate| candidate.priority);
    for group in usable.chunk_by(|a, b| a.priority == b.priority) {
        order_group(group, rng, &mut selection.order);
    }
    selection
}

fn skip_reason(candidate: &Candidate) -> Option<SkipReason> {
    if candidate.health == Health::Down {
        return Some(SkipReason::Down);
    }
    match candidate.channels.limit {
        Some(limit) if candidate.channels.is_full() => Some(SkipReason::Full { limit }),
        _ => None,
    }
}

/// Appends one priority's gateways: the weighted ones drawn by weight, then the rest.
fn order_group<R: Rng + ?Sized>(group: &[&Candidate], rng: &mut R, out: &mut Vec<GatewayId>) {
    let mut weighted: Vec<&Candidate> = group.iter().copied().filter(|c| c.weight > 0).collect();
    let mut total: u64 = weighted.iter().map(|c| u64::from(c.weight)).sum();

    // `total` is the sum of the remaining positive weights, so the range is never empty.
    while !weighted.is_empty() {
        let mut draw = rng.random_range(0..total);
        let mut index = weighted.len() - 1;
        for (position, candidate) in weighted.iter().enumerate() {
            let weight = u64::from(candidate.weight);
            if draw < weight {
                index = position;
                break;
            }
            draw -= weight;
        }
        let chosen = weighted.remove(index);
        total -= u64::from(chosen.weight);
        out.push(chosen.id.clone());
    }

    let unweighted = group.iter().filter(|c| c.weight == 0);
    out.extend(unweighted.map(|c| c.id.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn candidate(id: &str, priority: u32, weight: u32) -> Candidate {
        Candidate {
            id: GatewayId::new(id),
            priority,
            weight,
            health: Health::Up,
            channels: Channels {
                in_use: 0,
                limit: None,
            },
        }
    }

    fn ids(selection: &Selection) -> Vec<&str> {
        selection.order.iter().map(GatewayId::as_str).collect()
    }

    #[test]
    fn orders_by_priority() {
        let candidates = [
            candidate("c", 30, 1),
            candidate("a", 10, 1),
            candidate("b", 20, 1),
        ];
        let selection = order(&candidates, &mut SmallRng::seed_from_u64(1));
        assert_eq!(ids(&selection), ["a", "b", "c"]);
        assert!(selection.skipped.is_empty());
    }

    #[test]
    fn same_seed_same_order() {
        let candidates: Vec<_> = (0..8)
            .map(|i| candidate(&format!("gw{i}"), 1, i + 1))
            .collect();
        let first = order(&candidates, &mut SmallRng::seed_from_u64(42));
        let second = order(&candidates, &mut SmallRng::seed_from_u64(42));
        assert_eq!(first, second);
        assert_eq!(first.order.len(), 8);
    }

    #[test]
    fn weight_zero_goes_last_in_priority() {
        let candidates = [
            candidate("spare", 1, 0),
            candidate("main", 1, 5),
            candidate("backup", 2, 1),
        ];
        for seed in 0..50 {
            let selection = order(&candidates, &mut SmallRng::seed_from_u64(seed));
            assert_eq!(ids(&selection), ["main", "spare", "backup"]);
        }
    }

    #[test]
    fn weight_zero_only_keeps_order() {
        let candidates = [candidate("x", 1, 0), candidate("y", 1, 0)];
        let selection = order(&candidates, &mut SmallRng::seed_from_u64(3));
        assert_eq!(ids(&selection), ["x", "y"]);
    }

    #[test]
    fn weights_set_first_choice_share() {
        const ROUNDS: u32 = 20_000;
        let candidates = [
            candidate("a", 1, 1),
            candidate("b", 1, 3),
            candidate("c", 1, 6),
        ];
        let mut rng = SmallRng::seed_from_u64(7);
        let mut first = [0u32; 3];
        for _ in 0..ROUNDS {
            let selection = order(&candidates, &mut rng);
            let index = match selection.order[0].as_str() {
                "a" => 0,
                "b" => 1,
                _ => 2,
            };
            first[index] += 1;
            assert_eq!(selection.order.len(), 3);
        }

        // Expected shares 0.1, 0.3, 0.6; at 20 000 draws one standard deviation is at most
        // 0.0035, so 0.02 is more than five of them.
        for (count, expected) in first.iter().zip([0.1, 0.3, 0.6]) {
            let share = f64::from(*count) / f64::from(ROUNDS);
            assert!(
                (share - expected).abs() < 0.02,
                "share {share}, expected {expected}"
            );
        }
    }

    #[test]
    fn skips_down_and_full() {
        let mut down = candidate("down", 1, 1);
        down.health = Health::Down;
        let mut full = candidate("full", 1, 1);
        full.channels = Channels {
            in_use: 4,
            limit: Some(4),
        };
        let mut unknown = candidate("new", 2, 1);
        unknown.health = Health::Unknown;
        let mut spare = candidate("spare", 1, 1);
        spare.channels = Channels {
            in_use: 3,
            limit: Some(4),
        };

        let candidates = [down, full, unknown, spare];
        let selection = order(&candidates, &mut SmallRng::seed_from_u64(0));
        assert_eq!(ids(&selection), ["spare", "new"]);
        assert_eq!(
            selection.skipped,
            [
                Skipped {
                    id: GatewayId::new("down"),
                    reason: SkipReason::Down,
                },
                Skipped {
                    id: GatewayId::new("full"),
                    reason: SkipReason::Full { limit: 4 },
                },
            ]
        );
    }

    #[test]
    fn empty_input_empty_order() {
        let selection = order(&[], &mut SmallRng::seed_from_u64(0));
        assert!(selection.order.is_empty());
        assert!(selection.skipped.is_empty());
    }
}
