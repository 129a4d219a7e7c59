//! Hybrid ranking: reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009) of the
//! full-text ranking and the vector-similarity ranking. An item's score is the sum,
//! over the rankings it appears in, of `1 / (K + rank)`: no scale to tune between
//! bm25 and cosine, and an item both rankings like rises above one only one likes.

use std::collections::HashMap;

/// RRF's constant: damps the weight of the very first ranks (the paper's 60).
pub const K: f64 = 60.0;
/// How deep each ranking is read: the fused list holds at most twice this many items.
pub const DEPTH: usize = 100;

/// One fused hit: its score and, when they found it, its rank (1-based) in each list.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub id: String,
    pub score: f64,
    pub text_rank: Option<usize>,
    pub vector_rank: Option<usize>,
}

/// Where a hit keeps its rank in one of the rankings.
type RankOf = fn(&mut Fused) -> &mut Option<usize>;

/// Fuses two rankings (best first) into one, best first; ties go to the smaller id.
pub fn fuse(text: &[String], vector: &[String]) -> Vec<Fused> {
    let mut by_id: HashMap<&str, Fused> = HashMap::new();
    let rankings: [(&[String], RankOf); 2] = [
        (text, |h| &mut h.text_rank),
        (vector, |h| &mut h.vector_rank),
    ];
    for (ranking, rank_of) in rankings {
        for (i, id) in ranking.iter().enumerate() {
            let hit = by_id.entry(id).or_insert_with(|| Fused {
                id: id.clone(),
                score: 0.0,
                text_rank: None,
                vector_rank: None,
            });
            let rank = rank_of(hit);
            if rank.is_none() {
                *rank = Some(i + 1);
                hit.score += 1.0 / (K + (i + 1) as f64);
            }
        }
    }
    let mut fused: Vec<Fused> = by_id.into_values().collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    fused
}

/// A hybrid page cursor: the last hit's exact score and id.
pub fn cursor_of(hit: &Fused) -> String {
    format!("{:016x}~{}", hit.score.to_bits(), hit.id)
}

/// The hits after a cursor's position (`None` for a cursor not made by [`cursor_of`]).
pub fn after<'a>(fused: &'a [Fused], cursor: &str) -> Option<&'a [Fused]> {
    let (bits, id) = cursor.split_once('~')?;
    let score = f64::from_bits(u64::from_str_radix(bits, 16).ok()?);
    if !score.is_finite() || id.is_empty() {
        return None;
    }
    let start = fused
        .iter()
        .position(|h| h.score < score || (h.score == score && h.id.as_str() > id))
        .unwrap_or(fused.len());
    Some(&fused[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn an_item_both_rankings_find_comes_first() {
        let fused = fuse(&ids(&["a", "b", "c"]), &ids(&["c", "d", "a"]));
        let order: Vec<&str> = fused.iter().map(|h| h.id.as_str()).collect();
        // a: 1/61 + 1/63, c: 1/63 + 1/61 (tie: smaller id first), b: 1/62, d: 1/62.
        assert_eq!(order, ["a", "c", "b", "d"]);
        assert!((fused[0].score - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-12);
        assert_eq!(fused[0].text_rank, Some(1));
        assert_eq!(fused[0].vector_rank, Some(3));
        assert_eq!(fused[3].text_rank, None);
    }

    #[test]
    fn one_empty_ranking_keeps_the_others_order() {
        let fused = fuse(&ids(&["x", "y", "z"]), &[]);
        let order: Vec<&str> = fused.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(order, ["x", "y", "z"]);
        let fused = fuse(&[], &ids(&["z", "x"]));
        let order: Vec<&str> = fused.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(order, ["z", "x"]);
        // A ranking repeating an id counts its first rank only.
        let fused = fuse(&ids(&["x", "x"]), &[]);
        assert_eq!(fused.len(), 1);
        assert!((fused[0].score - 1.0 / 61.0).abs() < 1e-12);
    }

    #[test]
    fn cursors_resume_right_after_the_last_hit() {
        let fused = fuse(&ids(&["a", "b", "c", "d"]), &ids(&["b", "e"]));
        let all: Vec<&str> = fused.iter().map(|h| h.id.as_str()).collect();
        for cut in 0..fused.len() {
            let rest = after(&fused, &cursor_of(&fused[cut])).unwrap();
            let rest: Vec<&str> = rest.iter().map(|h| h.id.as_str()).collect();
            assert_eq!(rest, all[cut + 1..].to_vec());
        }
        assert!(after(&fused, "nonsense").is_none());
        assert!(after(&fused, "7ff0000000000000~a").is_none()); // infinity
        assert!(after(&fused, "3ff0000000000000~").is_none());
    }
}
