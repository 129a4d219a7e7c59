//! Embedding vectors: stored unit-length as little-endian `f32` bytes, so cosine
//! similarity is a plain dot product over the stored form.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

pub const MAX_DIMS: usize = 4096;

/// Scales `v` to unit length; `None` for a zero or non-finite vector.
pub fn normalize(v: &[f32]) -> Option<Vec<f32>> {
    if v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return None;
    }
    Some(v.iter().map(|x| (f64::from(*x) / norm) as f32).collect())
}

pub fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The dot product of a query with a stored vector, read straight from its bytes;
/// `None` when the bytes do not hold `query.len()` floats.
pub fn dot_bytes(query: &[f32], stored: &[u8]) -> Option<f32> {
    if stored.len() != query.len() * 4 {
        return None;
    }
    // Eight independent sums, so the compiler can use SIMD lanes (one running sum
    // would force strict left-to-right float order).
    let mut lanes = [0.0f32; 8];
    let mut q_blocks = query.chunks_exact(8);
    let mut b_blocks = stored.chunks_exact(32);
    for (q, b) in q_blocks.by_ref().zip(b_blocks.by_ref()) {
        for lane in 0..8 {
            let x = &b[lane * 4..lane * 4 + 4];
            lanes[lane] += q[lane] * f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for (q, b) in q_blocks
        .remainder()
        .iter()
        .zip(b_blocks.remainder().chunks_exact(4))
    {
        sum += q * f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    Some(sum)
}

/// The dot product of two equally long vectors, in eight lanes (see [`dot_bytes`]).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut a_blocks = a.chunks_exact(8);
    let mut b_blocks = b.chunks_exact(8);
    for (x, y) in a_blocks.by_ref().zip(b_blocks.by_ref()) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for (x, y) in a_blocks.remainder().iter().zip(b_blocks.remainder()) {
        sum += x * y;
    }
    sum
}

pub fn from_bytes(stored: &[u8]) -> Vec<f32> {
    stored
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The unit-length mean of several unit vectors (an item's chunks, as one query).
pub fn centroid(vectors: &[Vec<f32>]) -> Option<Vec<f32>> {
    let dims = vectors.first()?.len();
    let mut sum = vec![0.0f32; dims];
    for v in vectors {
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
    }
    normalize(&sum)
}

#[derive(Debug, Clone, PartialEq)]
struct Scored {
    score: f32,
    id: String,
}

impl Eq for Scored {}

impl Ord for Scored {
    /// Reversed so the heap's top is the worst kept item.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.id.cmp(&other.id))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Keeps the `k` best-scoring items, each with its best score (its best chunk).
/// Feed it one item at a time (rows ordered by item).
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Scored>,
    current: Option<Scored>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            current: None,
        }
    }

    pub fn offer(&mut self, id: &str, score: f32) {
        match &mut self.current {
            Some(c) if c.id == id => {
                if score > c.score {
                    c.score = score;
                }
            }
            _ => {
                if let Some(done) = self.current.take() {
                    self.keep(done);
                }
                self.current = Some(Scored {
                    score,
                    id: id.to_owned(),
                });
            }
        }
    }

    fn keep(&mut self, item: Scored) {
        if self.heap.len() < self.k {
            self.heap.push(item);
        } else if let Some(worst) = self.heap.peek() {
            if item.score > worst.score {
                self.heap.pop();
                self.heap.push(item);
            }
        }
    }

    /// Best first.
    pub fn finish(mut self) -> Vec<(String, f32)> {
        if let Some(done) = self.current.take() {
            self.keep(done);
        }
        let mut all = self.heap.into_sorted_vec();
        all.truncate(self.k);
        all.into_iter().map(|s| (s.id, s.score)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_vectors_and_their_bytes() {
        let v = normalize(&[3.0, 4.0]).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let bytes = to_bytes(&v);
        assert_eq!(bytes.len(), 8);
        assert_eq!(from_bytes(&bytes), v);
        assert!((dot_bytes(&v, &bytes).unwrap() - 1.0).abs() < 1e-6);
        assert_eq!(dot_bytes(&[1.0], &bytes), None);
        // Longer than one block of eight, with a remainder.
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..13).map(|i| (13 - i) as f32).collect();
        let expected: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot_bytes(&a, &to_bytes(&b)), Some(expected));
        assert_eq!(dot(&a, &b), expected);
        assert_eq!(normalize(&[0.0, 0.0]), None);
        assert_eq!(normalize(&[f32::NAN, 1.0]), None);
        assert_eq!(normalize(&[f32::INFINITY, 1.0]), None);
    }

    #[test]
    fn top_k_keeps_each_items_best_chunk() {
        let mut top = TopK::new(2);
        for (id, s) in [
            ("a", 0.1),
            ("a", 0.9),
            ("b", 0.5),
            ("c", 0.7),
            ("c", 0.2),
            ("d", 0.6),
        ] {
            top.offer(id, s);
        }
        assert_eq!(
            top.finish(),
            vec![("a".to_owned(), 0.9), ("c".to_owned(), 0.7)]
        );
    }

    #[test]
    fn centroid_is_unit_length() {
        let c = centroid(&[vec![1.0, 0.0], vec![0.0, 1.0]]).unwrap();
        assert!((c[0] - c[1]).abs() < 1e-6);
        assert!((c.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    }
}
