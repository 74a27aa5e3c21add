//! One stored field's value, so that a row's fields are listed once, in order, and
//! that list serves the INSERT's binds and the hash chain's canonical form alike.

/// A field as stored: text, optional text, an integer or a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i32),
    BigInt(i64),
    Bool(bool),
    OptBigInt(Option<i64>),
}
