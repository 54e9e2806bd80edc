//! The draws the model is made of. Every one takes the installation's own generator, so that an
//! installation's history depends only on the seed and its index, never on the others.

use rand::RngExt;
use rand::rngs::SmallRng;
use uuid::Uuid;

/// One of the items, each as likely as its share of the weights' sum.
pub(super) fn pick<T: Copy>(rng: &mut SmallRng, weighted: &[(T, f64)]) -> T {
    let total: f64 = weighted.iter().map(|(_, weight)| weight).sum();
    let mut point = rng.random::<f64>() * total;
    for (item, weight) in weighted {
        if point < *weight {
            return *item;
        }
        point -= weight;
    }
    weighted[weighted.len() - 1].0
}

/// Failures before the first success, each try succeeding with probability `p`.
pub(super) fn geometric(rng: &mut SmallRng, p: f64) -> u32 {
    let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    (u.ln() / (1.0 - p).ln()).floor().min(1e6) as u32
}

/// Exponentially distributed with the given mean (lifetimes of installations).
pub(super) fn exponential(rng: &mut SmallRng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

pub(super) fn random_uuid(rng: &mut SmallRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}
