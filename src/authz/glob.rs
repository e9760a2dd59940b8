//! Rule patterns: case-insensitive globs with `*` (any run) and `?` (one character), matched in
//! bounded time whatever the peer puts in its certificate.

/// A case-insensitive pattern with `*` (any run) and `?` (one character).
#[derive(Debug, Clone)]
pub(crate) struct Glob(Vec<char>);

impl Glob {
    pub(crate) fn new(pattern: &str) -> Self {
        Glob(pattern.to_lowercase().chars().collect())
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.to_lowercase().chars().collect();
        glob_match(&self.0, &text)
    }
}

/// Wildcard matching that remembers only the last `*` and retries from there, so it runs in
/// O(pattern × text) at worst, whatever the peer puts in its certificate.
pub(crate) fn glob_match(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || Some(c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}
