//! Port specifications: `22,80,8000-8100`, `top-100`, `top-1000`, `all`.

use super::top_ports::TOP_TCP_PORTS;
use std::str::FromStr;

/// Why a port spec could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// Nothing between commas.
    #[error("invalid port spec {0:?}: empty item; write ports like 22,80,8000-8100")]
    Empty(String),
    /// Not a number in 1-65535.
    #[error("invalid port {0:?}: ports are numbers from 1 to 65535")]
    BadPort(String),
    /// `a-b` with `a > b`.
    #[error(
        "invalid port range {first}-{last}: the first port is above the last; write {last}-{first}"
    )]
    Reversed {
        /// The first port as given.
        first: u16,
        /// The last port as given.
        last: u16,
    },
    /// `top-N` with N out of range.
    #[error("invalid port spec {0:?}: top-N takes N from 1 to 1000")]
    BadTop(String),
}

/// A set of ports, kept as sorted, merged inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    ranges: Vec<(u16, u16)>,
}

impl PortSpec {
    /// Every port, 1-65535.
    pub fn all() -> Self {
        PortSpec {
            ranges: vec![(1, 65535)],
        }
    }

    /// The `n` most frequently open TCP ports (n <= 1000).
    pub fn top(n: usize) -> Self {
        Self::from_ranges(TOP_TCP_PORTS.iter().take(n).map(|&p| (p, p)).collect())
    }

    fn from_ranges(mut ranges: Vec<(u16, u16)>) -> Self {
        ranges.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        PortSpec { ranges: merged }
    }

    /// The merged ranges, ascending.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }

    /// How many ports.
    pub fn len(&self) -> usize {
        self.ranges
            .iter()
            .map(|&(a, b)| usize::from(b - a) + 1)
            .sum()
    }

    /// True when no port is selected (never, for a parsed spec).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

fn port(s: &str) -> Result<u16, PortSpecError> {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(PortSpecError::BadPort(s.trim().to_string())),
    }
}

impl FromStr for PortSpec {
    type Err = PortSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut ranges = Vec::new();
        for item in spec.split(',') {
            let item = item.trim();
            let lower = item.to_ascii_lowercase();
            if item.is_empty() {
                return Err(PortSpecError::Empty(spec.to_string()));
            } else if lower == "all" || item == "-" {
                ranges.push((1, 65535));
            } else if let Some(n) = lower.strip_prefix("top-") {
                let n: usize = n
                    .parse()
                    .map_err(|_| PortSpecError::BadTop(item.to_string()))?;
                if !(1..=TOP_TCP_PORTS.len()).contains(&n) {
                    return Err(PortSpecError::BadTop(item.to_string()));
                }
                ranges.extend(Self::top(n).ranges);
            } else if let Some((a, b)) = item.split_once('-') {
                // nmap's open-ended forms: "-1024" and "60000-".
                let first = if a.trim().is_empty() { 1 } else { port(a)? };
                let last = if b.trim().is_empty() { 65535 } else { port(b)? };
                if first > last {
                    return Err(PortSpecError::Reversed { first, last });
                }
                ranges.push((first, last));
            } else {
                let p = port(item)?;
                ranges.push((p, p));
            }
        }
        Ok(Self::from_ranges(ranges))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges_merge() {
        let spec: PortSpec = "80,22,8000-8100,8050,8101".parse().unwrap();
        assert_eq!(spec.ranges(), [(22, 22), (80, 80), (8000, 8101)]);
        assert_eq!(spec.len(), 2 + 102);
    }

    #[test]
    fn named_sets() {
        assert_eq!("all".parse::<PortSpec>().unwrap().len(), 65535);
        assert_eq!("-".parse::<PortSpec>().unwrap(), PortSpec::all());
        let top100: PortSpec = "top-100".parse().unwrap();
        assert_eq!(top100.len(), 100);
        assert_eq!("top-1000".parse::<PortSpec>().unwrap().len(), 1000);
        for p in [80, 443, 22, 21, 3389] {
            assert!(
                top100.ranges().iter().any(|&(a, b)| (a..=b).contains(&p)),
                "{p}"
            );
        }
    }

    #[test]
    fn open_ended_ranges() {
        assert_eq!("-1024".parse::<PortSpec>().unwrap().ranges(), [(1, 1024)]);
        assert_eq!(
            "60000-".parse::<PortSpec>().unwrap().ranges(),
            [(60000, 65535)]
        );
    }

    #[test]
    fn bad_specs_have_clear_errors() {
        assert_eq!(
            "0".parse::<PortSpec>().unwrap_err(),
            PortSpecError::BadPort("0".into())
        );
        assert_eq!(
            "70000".parse::<PortSpec>().unwrap_err(),
            PortSpecError::BadPort("70000".into())
        );
        assert_eq!(
            "http".parse::<PortSpec>().unwrap_err(),
            PortSpecError::BadPort("http".into())
        );
        assert!(matches!(
            "22,,80".parse::<PortSpec>(),
            Err(PortSpecError::Empty(_))
        ));
        assert!(matches!(
            "top-0".parse::<PortSpec>(),
            Err(PortSpecError::BadTop(_))
        ));
        assert!(matches!(
            "top-5000".parse::<PortSpec>(),
            Err(PortSpecError::BadTop(_))
        ));
        let err = "100-20".parse::<PortSpec>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid port range 100-20: the first port is above the last; write 20-100"
        );
    }
}
