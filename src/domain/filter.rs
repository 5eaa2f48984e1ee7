//! The `filter` parameter: a case-insensitive, unanchored regular expression
//! that must mean the same on Postgres (`~*`, Spencer AREs) and on SQLite
//! (the `regex` crate). Constructs the two engines read differently are
//! refused here, with the construct named, so the stores never disagree.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder};
use regex_syntax::ast::{self, Ast, ClassSetItem, LiteralKind, Visitor};

pub const MAX_FILTER_BYTES: usize = 256;
/// Postgres refuses repetition counts above 255 (its `DUPMAX`).
const MAX_REPETITION: u32 = 255;
/// The largest pattern accepted once counted repetitions are written out
/// (`a{3}` is `aaa`, `(ab){2}` is `abab`): Postgres compiles them that way,
/// and the cost of matching each row grows with the result. Nested counts
/// multiply (`([a-z]{0,10}){0,255}` is 2,550 units). Postgres itself gives
/// up ("too complex") somewhere above 2,550; this bound stays well below.
pub const MAX_EXPANDED_SIZE: u64 = 1_000;
const COMPILED_SIZE_LIMIT: usize = 1 << 20;

/// A validated filter pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pattern: String,
}

impl Filter {
    /// `Ok(None)` for an empty filter (no filtering); `Err(reason)` for a
    /// pattern that is invalid, too long, or reads differently on the stores.
    pub fn parse(raw: &str) -> Result<Option<Filter>, String> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() > MAX_FILTER_BYTES {
            return Err(format!(
                "the filter is {} bytes; at most {MAX_FILTER_BYTES} are allowed",
                raw.len()
            ));
        }
        if let Some(c) = raw
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(format!(
                "the filter contains the control character U+{:04X}",
                c as u32
            ));
        }
        let parsed = ast::parse::Parser::new()
            .parse(raw)
            .map_err(|e| format!("{} at byte {}", e.kind(), e.span().start.offset))?;
        ast::visit(&parsed, Portable { pattern: raw })?;
        let size = expanded_size(&parsed);
        if size > MAX_EXPANDED_SIZE {
            return Err(format!(
                "the filter is too complex: written out, its repetitions come to {size} units, \
                 more than {MAX_EXPANDED_SIZE}; use smaller counts or fewer nested repetitions"
            ));
        }
        compile(raw).map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "the filter is too complex".to_owned(),
            other => other.to_string(),
        })?;
        Ok(Some(Filter {
            pattern: raw.to_owned(),
        }))
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

/// The size of `ast` with every counted repetition written out; an
/// unbounded one (`*`, `+`, `{n,}`) counts as its operand once, or `n` times.
fn expanded_size(ast: &Ast) -> u64 {
    match ast {
        Ast::Empty(_) | Ast::Flags(_) => 0,
        Ast::Literal(_)
        | Ast::Dot(_)
        | Ast::Assertion(_)
        | Ast::ClassUnicode(_)
        | Ast::ClassPerl(_)
        | Ast::ClassBracketed(_) => 1,
        Ast::Repetition(repetition) => {
            let times = match &repetition.op.kind {
                ast::RepetitionKind::ZeroOrOne
                | ast::RepetitionKind::ZeroOrMore
                | ast::RepetitionKind::OneOrMore => 1,
                ast::RepetitionKind::Range(range) => match range {
                    ast::RepetitionRange::Exactly(n)
                    | ast::RepetitionRange::AtLeast(n)
                    | ast::RepetitionRange::Bounded(_, n) => u64::from(*n).max(1),
                },
            };
            expanded_size(&repetition.ast).saturating_mul(times)
        }
        Ast::Group(group) => expanded_size(&group.ast),
        Ast::Alternation(alternation) => alternation
            .asts
            .iter()
            .fold(0, |sum, ast| sum.saturating_add(expanded_size(ast))),
        Ast::Concat(concat) => concat
            .asts
            .iter()
            .fold(0, |sum, ast| sum.saturating_add(expanded_size(ast))),
    }
}

/// How SQLite evaluates a pattern: the same options Postgres' `~*` has.
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        // Postgres' `.` matches a newline unless newline-sensitive mode is on.
        .dot_matches_new_line(true)
        .size_limit(COMPILED_SIZE_LIMIT)
        .dfa_size_limit(COMPILED_SIZE_LIMIT)
        .build()
}

/// `text ~* pattern` for SQLite, with compiled patterns cached per thread.
pub fn is_match(text: &str, pattern: &str) -> bool {
    thread_local! {
        static CACHE: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
    }
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(pattern) {
            if cache.len() >= 256 {
                cache.clear();
            }
            cache.insert(pattern.to_owned(), compile(pattern).ok());
        }
        cache
            .get(pattern)
            .and_then(Option::as_ref)
            .is_some_and(|regex| regex.is_match(text))
    })
}

/// Refuses what Postgres would read differently, or not at all.
struct Portable<'a> {
    pattern: &'a str,
}

impl Portable<'_> {
    fn text(&self, span: &ast::Span) -> &str {
        self.pattern
            .get(span.start.offset..span.end.offset)
            .unwrap_or("")
    }

    fn refuse(&self, span: &ast::Span, why: &str) -> Result<(), String> {
        Err(format!("`{}` {why}", self.text(span)))
    }

    fn check_literal(&self, literal: &ast::Literal) -> Result<(), String> {
        match &literal.kind {
            LiteralKind::Octal => self.refuse(
                &literal.span,
                "is an octal escape, which Postgres reads as a back-reference",
            ),
            LiteralKind::HexFixed(_) | LiteralKind::HexBrace(_) => self.refuse(
                &literal.span,
                "is a hex escape, which Postgres reads differently; write the character itself",
            ),
            LiteralKind::Verbatim
            | LiteralKind::Meta
            | LiteralKind::Superfluous
            | LiteralKind::Special(_) => {
                let c = literal.c;
                if !c.is_ascii() && c.to_lowercase().ne(c.to_uppercase()) {
                    self.refuse(
                        &literal.span,
                        "is a non-ASCII letter, whose case-insensitive matching differs between the stores; use `.` in its place",
                    )
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl Visitor for Portable<'_> {
    type Output = ();
    type Err = String;

    fn finish(self) -> Result<(), String> {
        Ok(())
    }

    fn visit_pre(&mut self, node: &Ast) -> Result<(), String> {
        match node {
            Ast::Literal(literal) => self.check_literal(literal),
            Ast::Assertion(assertion) => match assertion.kind {
                ast::AssertionKind::StartLine | ast::AssertionKind::EndLine | ast::AssertionKind::StartText => Ok(()),
                ast::AssertionKind::EndText => {
                    self.refuse(&assertion.span, "is not understood by Postgres; use `$`")
                }
                _ => self.refuse(
                    &assertion.span,
                    "is a word boundary, which Postgres reads differently (there `\\b` is a backspace)",
                ),
            },
            Ast::ClassPerl(class) => self.refuse(
                &class.span,
                "is a shorthand class whose meaning depends on the store's locale; use an explicit class such as [0-9] or [a-z0-9_]",
            ),
            Ast::ClassUnicode(class) => self.refuse(&class.span, "is a Unicode class, which Postgres does not support"),
            Ast::Flags(flags) => self.refuse(&flags.span, "sets inline flags, which Postgres reads differently"),
            Ast::Group(group) => match &group.kind {
                ast::GroupKind::CaptureIndex(_) => Ok(()),
                ast::GroupKind::CaptureName { name, .. } => {
                    self.refuse(&name.span, "names a group, which Postgres does not support")
                }
                ast::GroupKind::NonCapturing(flags) if flags.items.is_empty() => Ok(()),
                ast::GroupKind::NonCapturing(flags) => {
                    self.refuse(&flags.span, "sets inline flags, which Postgres reads differently")
                }
            },
            Ast::Repetition(repetition) => {
                match &*repetition.ast {
                    Ast::Repetition(_) => {
                        return self.refuse(
                            &repetition.span,
                            "repeats a repetition, which Postgres does not allow; put the inner one in a group, as in (a?)*",
                        )
                    }
                    Ast::Assertion(_) | Ast::Empty(_) => {
                        return self.refuse(
                            &repetition.span,
                            "repeats an anchor or nothing, which Postgres does not allow; drop the quantifier",
                        )
                    }
                    _ => {}
                }
                if let ast::RepetitionKind::Range(range) = &repetition.op.kind {
                    let largest = match range {
                        ast::RepetitionRange::Exactly(n) | ast::RepetitionRange::AtLeast(n) => *n,
                        ast::RepetitionRange::Bounded(_, n) => *n,
                    };
                    if largest > MAX_REPETITION {
                        return self.refuse(
                            &repetition.op.span,
                            &format!("repeats more than {MAX_REPETITION} times, which Postgres does not allow"),
                        );
                    }
                    if self.text(&repetition.op.span).starts_with("{,") {
                        return self.refuse(&repetition.op.span, "has no lower bound, which Postgres does not allow; write {0,n}");
                    }
                }
                Ok(())
            }
            Ast::Empty(_) | Ast::Dot(_) | Ast::ClassBracketed(_) | Ast::Alternation(_) | Ast::Concat(_) => Ok(()),
        }
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), String> {
        match item {
            ClassSetItem::Literal(literal) => self.check_literal(literal),
            ClassSetItem::Range(range) => {
                self.check_literal(&range.start)?;
                self.check_literal(&range.end)
            }
            ClassSetItem::Ascii(class) => self.refuse(
                &class.span,
                "is a POSIX class whose meaning depends on the store's locale; use an explicit range such as a-z",
            ),
            ClassSetItem::Perl(class) => self.refuse(
                &class.span,
                "is a shorthand class whose meaning depends on the store's locale; use an explicit range such as 0-9",
            ),
            ClassSetItem::Unicode(class) => self.refuse(&class.span, "is a Unicode class, which Postgres does not support"),
            ClassSetItem::Bracketed(class) => self.refuse(
                &class.span,
                "nests a class inside a class, which Postgres reads as literal brackets",
            ),
            ClassSetItem::Empty(_) | ClassSetItem::Union(_) => Ok(()),
        }
    }

    fn visit_class_set_binary_op_pre(&mut self, op: &ast::ClassSetBinaryOp) -> Result<(), String> {
        self.refuse(
            &op.span,
            "uses class set operations (&&, --, ~~), which Postgres reads as literal characters",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(pattern: &str) -> String {
        Filter::parse(pattern).expect_err(pattern)
    }

    #[test]
    fn empty_means_no_filter() {
        assert_eq!(Filter::parse("").unwrap(), None);
    }

    #[test]
    fn ordinary_patterns_are_accepted() {
        for pattern in [
            "windows",
            "chrome|firefox",
            "^Chrome",
            "Windows$",
            "fun.e",
            "[a-z]+[0-9]{2,3}",
            "(?:mobile|browser)Android",
            "a\\.b",
            "\\Achrome",
            "[^x]",
            "(a)(b)?",
            "a*?b",
            "中文",
        ] {
            assert!(matches!(Filter::parse(pattern), Ok(Some(_))), "{pattern}");
        }
    }

    #[test]
    fn matching_is_case_insensitive_and_unanchored() {
        assert!(is_match("ChromebrowserWindowsX", "windows"));
        assert!(is_match("ChromebrowserWindowsX", "^chrome"));
        assert!(!is_match("ChromebrowserWindowsX", "^windows"));
        assert!(
            is_match("a\nb", "a.b"),
            "dot matches newline as in Postgres"
        );
    }

    #[test]
    fn invalid_patterns_give_the_parsers_reason() {
        let reason = refused("(unclosed");
        assert!(reason.contains("unclosed group"), "{reason}");
        assert!(refused("a{").contains("at byte"));
        assert!(refused("*a").len() > 10);
    }

    #[test]
    fn over_long_patterns_are_refused() {
        assert!(Filter::parse(&"a".repeat(MAX_FILTER_BYTES)).is_ok());
        assert!(refused(&"a".repeat(MAX_FILTER_BYTES + 1)).contains("at most 256"));
    }

    #[test]
    fn constructs_the_engines_read_differently_are_refused_by_name() {
        let cases = [
            ("\\bword", "`\\b`"),
            ("a\\B", "`\\B`"),
            ("\\d+", "`\\d`"),
            ("\\w", "`\\w`"),
            ("\\s", "`\\s`"),
            ("\\pL", "`\\pL`"),
            ("[[:alpha:]]", "`[:alpha:]`"),
            ("[a[bc]]", "`[bc]`"),
            ("[a-z&&[^x]]", "&&"),
            ("(?i)a", "`(?i)`"),
            ("(?i:a)", "`i`"),
            ("(?P<n>a)", "`n`"),
            ("a{300}", "`{300}`"),
            ("\\x41", "`\\x41`"),
            ("é", "`é`"),
            ("a\\z", "`\\z`"),
        ];
        for (pattern, named) in cases {
            let reason = refused(pattern);
            assert!(reason.contains(named), "{pattern}: {reason}");
        }
    }

    #[test]
    fn what_postgres_cannot_compile_is_refused_by_name() {
        // Each of these compiles in Rust but Postgres rejects it
        // ("quantifier operand invalid", "too complex").
        let cases = [
            ("^*", "`^*`"),
            ("a|^*", "`^*`"),
            ("\\A{2}", "`\\A{2}`"),
            (" ?*?", "` ?*?`"),
            ("a**", "`a**`"),
            ("x{2}{3}", "`x{2}{3}`"),
            ("$+", "`$+`"),
            ("(((a{0,9}){0,9}){0,9}){0,9}", "too complex"),
        ];
        for (pattern, named) in cases {
            let reason = refused(pattern);
            assert!(reason.contains(named), "{pattern}: {reason}");
        }
    }

    #[test]
    fn repetitions_are_bounded_by_their_written_out_size() {
        let reason = refused("([a-z]{0,10}){0,255}z");
        assert!(reason.contains("2551 units"), "{reason}");
        assert!(Filter::parse("[a-z]{0,255}[0-9]{0,255}").unwrap().is_some());
        assert!(Filter::parse("((a{0,9}){0,9}){0,9}").unwrap().is_some());
        assert!(Filter::parse("(a*)*b").unwrap().is_some());
        assert!(Filter::parse("(^a|b$)+").unwrap().is_some());
        assert_eq!(
            expanded_size(&ast::parse::Parser::new().parse("(ab){3}c+").unwrap()),
            7
        );
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(refused("a\0b").contains("U+0000"));
    }

    #[test]
    fn huge_compiled_patterns_are_refused() {
        let reason = refused("(?:[a-z]{255}){255}");
        assert!(
            reason.contains("too complex") || reason.contains("size"),
            "{reason}"
        );
    }
}
