//! Configuration files from disk: [`load_keepalived`] and [`load_ipvsadm_rules`] read a file
//! and hand its text to the core's parsers ([`lbcore::config`]); [`FsSource`] resolves
//! keepalived's `include` directives on the file system.
//!
//! `include PATTERN` behaves as in keepalived (`lib/parser.c` `read_conf_file`): a relative
//! pattern is taken from the directory of the including file; `*`, `?` and `[...]` match in
//! the last path component; matches are read in sorted order; directories and executable
//! files are skipped, as keepalived skips them; no match at all is a warning, not an error.
//! Unlike keepalived, a matched file that cannot be read is an error: loading a partial
//! configuration silently is worse than refusing it. The parser bounds include nesting
//! ([`lbcore::config::keepalived::MAX_INCLUDE_DEPTH`]), which stops include loops.

use std::path::{Path, PathBuf};

use lbcore::config::{Diagnostic, Origin, Parsed, Severity, Source};

/// Reads and parses a keepalived.conf file, following its `include`s on the file system.
pub fn load_keepalived(path: &Path) -> Result<Parsed, Vec<Diagnostic>> {
    let text = read(path)?;
    lbcore::config::parse_keepalived(&path.display().to_string(), &text, &mut FsSource)
}

/// Reads and parses an `ipvsadm -Sn` style rules file.
pub fn load_ipvsadm_rules(path: &Path) -> Result<Parsed, Vec<Diagnostic>> {
    let text = read(path)?;
    lbcore::config::parse_ipvsadm_rules(&path.display().to_string(), &text)
}

fn read(path: &Path) -> Result<String, Vec<Diagnostic>> {
    read_text(path).map_err(|message| {
        vec![Diagnostic {
            origin: Origin {
                file: path.display().to_string(),
                line: 0,
            },
            severity: Severity::Error,
            message,
        }]
    })
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// keepalived's `include` on the real file system (see the module documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct FsSource;

impl Source for FsSource {
    fn include(&mut self, pattern: &str, from: &Origin) -> Result<Vec<(String, String)>, String> {
        let pat = Path::new(pattern);
        let full: PathBuf = if pat.is_absolute() {
            pat.to_path_buf()
        } else {
            Path::new(&from.file).parent().unwrap_or(Path::new("")).join(pat)
        };
        let name = full
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("'{pattern}' does not name a file"))?
            .to_string();
        let dir = full.parent().unwrap_or(Path::new("")).to_path_buf();
        if dir.to_string_lossy().contains(['*', '?', '[']) {
            return Err("wildcards are supported in the last path component only".to_string());
        }
        let mut paths: Vec<PathBuf> = if has_wildcard(&name) {
            let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &dir
            }) else {
                // glob(3) reports a missing directory as no match.
                return Ok(Vec::new());
            };
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                // As glob(3): a leading '.' must be matched explicitly.
                .filter(|n| !n.starts_with('.') || name.starts_with('.'))
                .filter(|n| glob_match(&name, n))
                .map(|n| dir.join(n))
                .collect()
        } else if full.exists() {
            vec![full.clone()]
        } else {
            Vec::new()
        };
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            if !meta.is_file() || is_executable(&meta) {
                continue;
            }
            out.push((p.display().to_string(), read_text(&p)?));
        }
        Ok(out)
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// fnmatch(3) without flags on one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
/// Iterative with one backtrack point for `*`, so linear-ish and without recursion.
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class(&p[pi..], n[ni]),
            Some(c) if *c == n[ni] => Some(1),
            _ => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the bracket expression at the start of `p`; the expression's length
/// if it matches. An unterminated `[` is a literal, as in fnmatch.
fn class(p: &[char], c: char) -> Option<usize> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut hit = false;
    while let Some(&ch) = p.get(i) {
        if ch == ']' && i > start {
            return (hit != negate).then_some(i + 1);
        }
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            if (ch..=p[i + 2]).contains(&c) {
                hit = true;
            }
            i += 3;
        } else {
            if ch == c {
                hit = true;
            }
            i += 1;
        }
    }
    (c == '[').then_some(1)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob_match("*.conf", "a.conf"));
        assert!(glob_match("*.conf", ".conf"));
        assert!(!glob_match("*.conf", "a.conf.bak"));
        assert!(glob_match("vi_?.conf", "vi_1.conf"));
        assert!(!glob_match("vi_?.conf", "vi_10.conf"));
        assert!(glob_match("[0-9]*", "10-x"));
        assert!(!glob_match("[!0-9]*", "10-x"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("x[", "x["));
        assert!(glob_match("*", ""));
    }
}
