//! What is wrong with a configuration: each problem names its key (as the file
//! spells it, `section.key`) and why, and where in the file when it came from one.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `section.key`, `[section]`, or `syntax` for a file that is not TOML.
    pub key: String,
    pub message: String,
    /// 1-based line in the file, when the problem is located there.
    pub line: Option<usize>,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
            line: None,
        }
    }

    pub fn at_line(mut self, line: Option<usize>) -> Problem {
        self.line = line;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Every problem found, reported together (bad input: exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    /// The file they were found in, if any.
    pub file: Option<String>,
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        match &self.file {
            Some(file) => write!(f, "{n} problem(s) in the configuration ({file})")?,
            None => write!(f, "{n} problem(s) in the configuration")?,
        }
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
