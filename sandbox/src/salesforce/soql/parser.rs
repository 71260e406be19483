//! Recursive-descent parser for the SOQL subset:
//!
//! ```text
//! query      := SELECT item (',' item)* FROM name [WHERE condition]
//! item       := path | '(' SELECT path (',' path)* FROM name [WHERE condition] ')'
//! path       := name ('.' name)*
//! condition  := NOT simple | simple ((AND simple)* | (OR simple)*)
//! simple     := '(' condition ')' | comparison
//! comparison := path ('=' | '!=' | '<>' | '<' | '<=' | '>' | '>=') literal
//!             | path [NOT] IN '(' literal (',' literal)* ')'
//!             | path (INCLUDES | EXCLUDES) '(' string (',' string)* ')'
//! literal    := string | number | date | datetime | TRUE | FALSE | NULL
//! ```
//!
//! Keywords are case-insensitive. Mixing AND and OR on one level without parentheses is an
//! error, as in Salesforce ("unexpected token: 'OR'"), and so is `AND NOT x`.

use super::ast::{
    CompareOp, Comparison, Condition, FieldPath, Literal, Name, Query, SelectItem, Subquery, Test,
};
use super::error::SoqlError;
use super::lexer::{Token, TokenKind, tokenize};

/// Parses a whole query.
pub fn parse(query: &str) -> Result<Query, SoqlError> {
    let tokens = tokenize(query)?;
    let mut parser = Parser { tokens, index: 0 };
    let parsed = parser.query()?;
    parser.expect_end()?;
    Ok(parsed)
}

struct Parser {
    tokens: Vec<Token>,
    index: usize,
}

/// Which connective a condition level has committed to.
#[derive(Clone, Copy, PartialEq)]
enum Connective {
    And,
    Or,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.index.min(self.tokens.len() - 1)]
    }

    fn peek_second(&self) -> &Token {
        &self.tokens[(self.index + 1).min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::End {
            self.index += 1;
        }
        token
    }

    fn unexpected(&self) -> SoqlError {
        unexpected(self.peek())
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        is_keyword(self.peek(), keyword)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.advance();
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), SoqlError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect(&mut self, kind: TokenKind) -> Result<(), SoqlError> {
        if self.peek().kind == kind {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect_end(&self) -> Result<(), SoqlError> {
        if self.peek().kind == TokenKind::End {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn query(&mut self) -> Result<Query, SoqlError> {
        self.expect_keyword("SELECT")?;
        let mut items = vec![self.select_item()?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            items.push(self.select_item()?);
        }
        self.expect_keyword("FROM")?;
        let from = self.name()?;
        let filter = self.optional_where()?;
        Ok(Query {
            items,
            from,
            filter,
        })
    }

    fn select_item(&mut self) -> Result<SelectItem, SoqlError> {
        if self.peek().kind == TokenKind::OpenParen && is_keyword(self.peek_second(), "SELECT") {
            self.advance();
            let subquery = self.subquery()?;
            self.expect(TokenKind::CloseParen)?;
            Ok(SelectItem::Subquery(subquery))
        } else {
            Ok(SelectItem::Field(self.path()?))
        }
    }

    /// A child subquery selects plain and lookup fields only: the emulator supports one level
    /// of parent-to-child nesting, which is all the sync's queries use.
    fn subquery(&mut self) -> Result<Subquery, SoqlError> {
        self.expect_keyword("SELECT")?;
        let mut fields = vec![self.path()?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            fields.push(self.path()?);
        }
        self.expect_keyword("FROM")?;
        let relationship = self.name()?;
        let filter = self.optional_where()?;
        Ok(Subquery {
            fields,
            relationship,
            filter,
        })
    }

    fn optional_where(&mut self) -> Result<Option<Condition>, SoqlError> {
        if self.eat_keyword("WHERE") {
            Ok(Some(self.condition()?))
        } else {
            Ok(None)
        }
    }

    fn name(&mut self) -> Result<Name, SoqlError> {
        let token = self.peek().clone();
        match &token.kind {
            TokenKind::Identifier(text) if !is_reserved(text) => {
                self.advance();
                Ok(Name {
                    text: text.clone(),
                    position: token.position,
                })
            }
            _ => Err(unexpected(&token)),
        }
    }

    fn path(&mut self) -> Result<FieldPath, SoqlError> {
        let mut segments = vec![self.name()?];
        while self.peek().kind == TokenKind::Dot {
            self.advance();
            segments.push(self.name()?);
        }
        Ok(FieldPath { segments })
    }

    fn condition(&mut self) -> Result<Condition, SoqlError> {
        if self.eat_keyword("NOT") {
            return Ok(Condition::Not(Box::new(self.simple_condition()?)));
        }
        let first = self.simple_condition()?;
        let connective = if self.at_keyword("AND") {
            Connective::And
        } else if self.at_keyword("OR") {
            Connective::Or
        } else {
            return Ok(first);
        };
        let mut operands = vec![first];
        loop {
            let here_and = self.at_keyword("AND");
            let here_or = self.at_keyword("OR");
            if !here_and && !here_or {
                break;
            }
            let here = if here_and {
                Connective::And
            } else {
                Connective::Or
            };
            if here != connective {
                return Err(self.unexpected());
            }
            self.advance();
            operands.push(self.simple_condition()?);
        }
        Ok(match connective {
            Connective::And => Condition::And(operands),
            Connective::Or => Condition::Or(operands),
        })
    }

    fn simple_condition(&mut self) -> Result<Condition, SoqlError> {
        if self.peek().kind == TokenKind::OpenParen {
            self.advance();
            let inner = self.condition()?;
            self.expect(TokenKind::CloseParen)?;
            return Ok(inner);
        }
        Ok(Condition::Compare(self.comparison()?))
    }

    fn comparison(&mut self) -> Result<Comparison, SoqlError> {
        let field = self.path()?;
        let test = self.test()?;
        Ok(Comparison { field, test })
    }

    fn test(&mut self) -> Result<Test, SoqlError> {
        if let Some(op) = compare_op(&self.peek().kind) {
            self.advance();
            return Ok(Test::Compare(op, self.literal()?));
        }
        if self.eat_keyword("IN") {
            return Ok(Test::In(self.literal_list()?));
        }
        if self.at_keyword("NOT") && is_keyword(self.peek_second(), "IN") {
            self.advance();
            self.advance();
            return Ok(Test::NotIn(self.literal_list()?));
        }
        if self.eat_keyword("INCLUDES") {
            return Ok(Test::Includes(self.picklist_sets()?));
        }
        if self.eat_keyword("EXCLUDES") {
            return Ok(Test::Excludes(self.picklist_sets()?));
        }
        Err(self.unexpected())
    }

    fn literal(&mut self) -> Result<Literal, SoqlError> {
        let token = self.peek().clone();
        let literal = match &token.kind {
            TokenKind::Str(s) => Literal::Str(s.clone()),
            TokenKind::Number(n) => Literal::Number(*n),
            TokenKind::Date(d) => Literal::Date(*d),
            TokenKind::DateTime(t) => Literal::DateTime(*t),
            TokenKind::Identifier(word) if word.eq_ignore_ascii_case("TRUE") => Literal::Bool(true),
            TokenKind::Identifier(word) if word.eq_ignore_ascii_case("FALSE") => {
                Literal::Bool(false)
            }
            TokenKind::Identifier(word) if word.eq_ignore_ascii_case("NULL") => Literal::Null,
            _ => return Err(unexpected(&token)),
        };
        self.advance();
        Ok(literal)
    }

    fn literal_list(&mut self) -> Result<Vec<Literal>, SoqlError> {
        self.expect(TokenKind::OpenParen)?;
        let mut values = vec![self.literal()?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            values.push(self.literal()?);
        }
        self.expect(TokenKind::CloseParen)?;
        Ok(values)
    }

    fn picklist_sets(&mut self) -> Result<Vec<Vec<String>>, SoqlError> {
        self.expect(TokenKind::OpenParen)?;
        let mut sets = vec![self.picklist_set()?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            sets.push(self.picklist_set()?);
        }
        self.expect(TokenKind::CloseParen)?;
        Ok(sets)
    }

    /// `'a;b'` names the set {a, b}; values are trimmed like Salesforce stores them.
    fn picklist_set(&mut self) -> Result<Vec<String>, SoqlError> {
        let token = self.peek().clone();
        let TokenKind::Str(value) = &token.kind else {
            return Err(unexpected(&token));
        };
        self.advance();
        Ok(value
            .split(';')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

fn compare_op(kind: &TokenKind) -> Option<CompareOp> {
    Some(match kind {
        TokenKind::Equals => CompareOp::Equal,
        TokenKind::NotEquals => CompareOp::NotEqual,
        TokenKind::Less => CompareOp::Less,
        TokenKind::LessOrEqual => CompareOp::LessOrEqual,
        TokenKind::Greater => CompareOp::Greater,
        TokenKind::GreaterOrEqual => CompareOp::GreaterOrEqual,
        _ => return None,
    })
}

fn is_keyword(token: &Token, keyword: &str) -> bool {
    matches!(&token.kind, TokenKind::Identifier(word) if word.eq_ignore_ascii_case(keyword))
}

/// Words that can never be a field or object name in the supported grammar.
fn is_reserved(word: &str) -> bool {
    const RESERVED: &[&str] = &[
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "INCLUDES", "EXCLUDES", "TRUE",
        "FALSE", "NULL",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

fn unexpected(token: &Token) -> SoqlError {
    let detail = if token.kind == TokenKind::End {
        "unexpected token: <EOF>".to_owned()
    } else {
        format!("unexpected token: '{}'", token.text)
    };
    SoqlError::malformed(token.position, detail)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn where_of(clause: &str) -> Condition {
        parse(&format!("SELECT Id FROM Account WHERE {clause}"))
            .unwrap()
            .filter
            .unwrap()
    }

    fn field(condition: &Condition) -> String {
        match condition {
            Condition::Compare(c) => c.field.dotted(),
            other => panic!("not a comparison: {other:?}"),
        }
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let query = parse("select Id, name from Account where Type in ('Customer')").unwrap();
        assert_eq!(query.items.len(), 2);
        assert_eq!(query.from.text, "Account");
        assert!(matches!(
            query.filter,
            Some(Condition::Compare(Comparison {
                test: Test::In(_),
                ..
            }))
        ));
    }

    #[test]
    fn dotted_paths_and_child_subqueries_are_select_items() {
        let query = parse(
            "SELECT Solutions_Architect_Lookup__r.Name, (SELECT Id FROM Zuora__Subscriptions__r \
             WHERE Zuora__Status__c != 'Cancelled') FROM Account",
        )
        .unwrap();
        let SelectItem::Field(path) = &query.items[0] else {
            panic!("expected a field")
        };
        assert_eq!(path.dotted(), "Solutions_Architect_Lookup__r.Name");
        let SelectItem::Subquery(sub) = &query.items[1] else {
            panic!("expected a subquery")
        };
        assert_eq!(sub.relationship.text, "Zuora__Subscriptions__r");
        assert!(sub.filter.is_some());
    }

    #[test]
    fn or_of_a_parenthesised_and_keeps_its_structure() {
        let condition = where_of(
            "Account_ID_18__c = 'x' OR (Type = 'Partner' AND Partner_Track__c IN ('Open', 'Select'))",
        );
        let Condition::Or(operands) = condition else {
            panic!("expected OR")
        };
        assert_eq!(field(&operands[0]), "Account_ID_18__c");
        let Condition::And(inner) = &operands[1] else {
            panic!("expected AND")
        };
        assert_eq!(inner.len(), 2);
    }

    #[test]
    fn mixing_and_with_or_needs_parentheses() {
        let err =
            parse("SELECT Id FROM Account WHERE A__c = 1 AND B__c = 2 OR C__c = 3").unwrap_err();
        assert_eq!(err.code, "MALFORMED_QUERY");
        assert_eq!(err.detail, "unexpected token: 'OR'");
        assert_eq!(err.position.unwrap().column, 52);
    }

    #[test]
    fn not_is_allowed_at_the_start_of_a_level_only() {
        assert!(matches!(where_of("NOT Name = 'x'"), Condition::Not(_)));
        assert!(matches!(
            where_of("Id != null AND (NOT Name = 'x')"),
            Condition::And(_)
        ));
        let err = parse("SELECT Id FROM Account WHERE Id != null AND NOT Name = 'x'").unwrap_err();
        assert_eq!(err.detail, "unexpected token: 'NOT'");
    }

    #[test]
    fn literals_of_every_kind() {
        let Condition::Compare(c) = where_of("D__c >= 2024-01-31") else {
            panic!()
        };
        assert_eq!(
            c.test,
            Test::Compare(
                CompareOp::GreaterOrEqual,
                Literal::Date(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap())
            )
        );
        let Condition::Compare(c) = where_of("N__c NOT IN (1, -2.5, null, TRUE, 'x')") else {
            panic!()
        };
        assert_eq!(
            c.test,
            Test::NotIn(vec![
                Literal::Number(1.0),
                Literal::Number(-2.5),
                Literal::Null,
                Literal::Bool(true),
                Literal::Str("x".into())
            ])
        );
    }

    #[test]
    fn includes_splits_semicolon_sets() {
        let Condition::Compare(c) = where_of("Role__c INCLUDES ('Gitlab Admin', 'a;b')") else {
            panic!()
        };
        assert_eq!(
            c.test,
            Test::Includes(vec![
                vec!["Gitlab Admin".to_owned()],
                vec!["a".to_owned(), "b".to_owned()]
            ])
        );
    }

    #[test]
    fn syntax_errors_name_the_token() {
        for (query, token) in [
            ("SELECT Id FRM Account", "'FRM'"),
            ("SELECT Id, FROM Account", "'FROM'"),
            ("SELECT Id FROM Account WHERE", "<EOF>"),
            ("SELECT Id FROM Account WHERE Name = ", "<EOF>"),
            ("SELECT Id FROM Account WHERE Name IN ()", "')'"),
            ("SELECT Id FROM Account WHERE Name", "<EOF>"),
            ("SELECT Id FROM Account LIMIT 5", "'LIMIT'"),
            ("SELECT Id FROM Account WHERE (Name = 'a'", "<EOF>"),
            ("SELECT (SELECT Id FROM Contacts FROM Account", "'FROM'"),
            ("SELECT Id FROM Account WHERE Role__c INCLUDES (1)", "'1'"),
        ] {
            let err = parse(query).unwrap_err();
            assert_eq!(err.code, "MALFORMED_QUERY", "{query}");
            assert_eq!(err.detail, format!("unexpected token: {token}"), "{query}");
        }
    }
}
