//! Finding copied messages again after the source folder got a new UIDVALIDITY (it was
//! deleted and made again, or restored): the map rows of the old UIDs, indexed by the
//! size of the bytes that were copied and their content hash.

use crate::engine::uidmap::MapRow;
use std::collections::{HashMap, HashSet};

/// The copied messages of a folder's old UIDVALIDITY, each to be claimed once.
#[derive(Debug, Default)]
pub struct CopiedIndex<'a> {
    by_content: HashMap<(u64, String), Vec<&'a MapRow>>,
    dates: HashSet<i64>,
    sizes: HashSet<u64>,
}

impl<'a> CopiedIndex<'a> {
    pub fn new(rows: impl IntoIterator<Item = &'a MapRow>) -> Self {
        let mut index = CopiedIndex::default();
        for row in rows {
            index.dates.insert(row.internal_date);
            index.sizes.insert(row.size);
            index
                .by_content
                .entry((row.size, row.content_hash.clone()))
                .or_default()
                .push(row);
        }
        // Claimed from the front: the oldest UID first, as the copies were made.
        for rows in index.by_content.values_mut() {
            rows.sort_by_key(|r| std::cmp::Reverse((r.source_uidvalidity, r.source_uid)));
        }
        index
    }

    /// Whether a listed message (its listed size, its date) can be one of these: worth
    /// fetching to compare. The listed size may be an estimate, so a date alone will do.
    pub fn may_hold(&self, listed_size: u64, date: Option<i64>) -> bool {
        !self.by_content.is_empty()
            && (self.sizes.contains(&listed_size) || date.is_some_and(|d| self.dates.contains(&d)))
    }

    /// The copied message with exactly these bytes (their length and hash), claimed so
    /// that an exact duplicate on the source is matched to the other copy.
    pub fn take(&mut self, size: u64, hash: &str) -> Option<&'a MapRow> {
        let key = (size, hash.to_owned());
        let rows = self.by_content.get_mut(&key)?;
        let row = rows.pop();
        if rows.is_empty() {
            self.by_content.remove(&key);
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(uid: u32, size: u64, date: i64, hash: &str) -> MapRow {
        MapRow {
            source_folder: "F".into(),
            source_uidvalidity: 1,
            source_uid: uid,
            target_folder: "F".into(),
            target_uidvalidity: Some(9),
            target_uid: Some(uid),
            state: "done".into(),
            target_uidnext_before: None,
            size,
            internal_date: date,
            content_hash: hash.into(),
            flags: String::new(),
            identity: None,
        }
    }

    #[test]
    fn duplicates_are_claimed_once_each_and_sizes_are_the_bytes() {
        let rows = [
            row(1, 10, 100, "a"),
            row(2, 10, 100, "a"),
            row(3, 12, 200, "b"),
        ];
        let mut index = CopiedIndex::new(&rows);
        // A listed size of 15 (an estimate) with a known date is still a candidate.
        assert!(index.may_hold(15, Some(200)));
        assert!(index.may_hold(12, None));
        assert!(!index.may_hold(15, Some(300)));
        assert_eq!(index.take(10, "a").map(|r| r.source_uid), Some(1));
        assert_eq!(index.take(10, "a").map(|r| r.source_uid), Some(2));
        assert!(index.take(10, "a").is_none());
        assert!(
            index.take(15, "b").is_none(),
            "keyed by the copied bytes' size"
        );
        assert_eq!(index.take(12, "b").map(|r| r.source_uid), Some(3));
        assert!(!index.may_hold(12, Some(200)), "nothing left to claim");
    }
}
