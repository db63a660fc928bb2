//! What the lists share: a case-insensitive substring pattern, and keyset paging — a page
//! starts after (or ends before) a row's sort key, so a deep page costs what the first does
//! and rows inserted meanwhile neither repeat nor vanish.

/// Which page of a list ordered by a key and then by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keyset<K> {
    First,
    /// The rows after this one, in list order.
    After(K, i64),
    /// The rows before this one, in list order.
    Before(K, i64),
}

/// One page, and whether there are rows on either side of it.
pub struct Window<T> {
    pub rows: Vec<T>,
    pub has_previous: bool,
    pub has_next: bool,
}

impl<T> Window<T> {
    /// Puts a page together from a read of `limit + 1` rows in the direction `at` asks
    /// (backwards for `Before`, so they are turned round here).
    pub fn of<K>(mut rows: Vec<T>, at: &Keyset<K>, limit: i64) -> Window<T> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        match at {
            Keyset::First => Window {
                rows,
                has_previous: false,
                has_next: more,
            },
            Keyset::After(..) => Window {
                rows,
                has_previous: true,
                has_next: more,
            },
            Keyset::Before(..) => {
                rows.reverse();
                Window {
                    rows,
                    has_previous: more,
                    has_next: true,
                }
            }
        }
    }
}

/// `%needle%` for LIKE with `\` as escape, the needle lowercased.
pub fn contains_pattern(needle: &str) -> String {
    let mut out = String::with_capacity(needle.len() + 2);
    out.push('%');
    for ch in needle.trim().to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

diesel::define_sql_function! {
    /// SQL's `lower()` (ASCII only in SQLite).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_escapes_like_wildcards() {
        assert_eq!(contains_pattern(" 50%_A\\b "), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn a_page_before_a_row_is_turned_round() {
        let w = Window::of(vec![3, 2, 1], &Keyset::Before((), 4), 2);
        assert_eq!(w.rows, [2, 3]);
        assert!(w.has_previous && w.has_next);
        let w = Window::of(vec![1, 2], &Keyset::<()>::First, 2);
        assert!(!w.has_previous && !w.has_next);
    }
}
