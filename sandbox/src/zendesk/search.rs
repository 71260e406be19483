//! The part of Zendesk's search syntax the user search emulates.
//!
//! `email:"x@y"` matches a user's email exactly, case-insensitively (primary or secondary);
//! `role:`, `external_id:` and `organization_id:` match exactly; a bare word matches a
//! substring of name, email or notes. Any other keyword is answered with a `QueryError`
//! rather than a silently wrong result.

use super::records::user::User;

#[derive(Debug, PartialEq)]
pub(crate) struct UserQuery {
    terms: Vec<Term>,
}

#[derive(Debug, PartialEq)]
enum Term {
    Email(String),
    Role(String),
    ExternalId(String),
    OrganizationId(u64),
    Text(String),
}

impl UserQuery {
    pub(crate) fn parse(query: &str) -> Result<Self, String> {
        let terms = tokens(query)
            .into_iter()
            .map(|token| term(&token))
            .collect::<Result<Vec<_>, _>>()?;
        if terms.is_empty() {
            return Err("The search query is empty".into());
        }
        Ok(UserQuery { terms })
    }

    /// True when the user satisfies every term.
    pub(crate) fn matches(&self, user: &User, organization_id: Option<u64>) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Email(email) => user.has_email(email),
            Term::Role(role) => user.role.eq_ignore_ascii_case(role),
            Term::ExternalId(id) => user
                .external_id
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(id)),
            Term::OrganizationId(id) => organization_id == Some(*id),
            Term::Text(text) => {
                let text = text.to_lowercase();
                let notes = user
                    .profile
                    .get("notes")
                    .and_then(|n| n.as_str())
                    .unwrap_or_default();
                [
                    user.name.as_str(),
                    user.email.as_deref().unwrap_or_default(),
                    notes,
                ]
                .iter()
                .any(|field| field.to_lowercase().contains(&text))
            }
        })
    }
}

fn term(token: &str) -> Result<Term, String> {
    let Some((keyword, value)) = token.split_once(':') else {
        return Ok(Term::Text(unquote(token)));
    };
    let value = unquote(value);
    match keyword {
        "email" => Ok(Term::Email(value)),
        "role" => Ok(Term::Role(value)),
        "external_id" => Ok(Term::ExternalId(value)),
        "organization_id" => value
            .parse()
            .map(Term::OrganizationId)
            .map_err(|_| format!("Invalid organization_id: {value}")),
        // The search API's result-type filter; a user search only returns users anyway.
        "type" if value == "user" => Ok(Term::Text(String::new())),
        other => Err(format!(
            "Unsupported search keyword in this sandbox: {other}"
        )),
    }
}

fn unquote(value: &str) -> String {
    value.trim_matches('"').to_owned()
}

/// Splits on whitespace outside double quotes.
fn tokens(query: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for ch in query.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                current.push(ch);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keywords_quotes_and_words() {
        let query =
            UserQuery::parse(r#"email:"Pat Lee@x.example" role:end-user smith"#).expect("valid");
        assert_eq!(
            query.terms,
            vec![
                Term::Email("Pat Lee@x.example".into()),
                Term::Role("end-user".into()),
                Term::Text("smith".into()),
            ]
        );
    }

    #[test]
    fn rejects_unsupported_keywords_and_empty_queries() {
        assert!(UserQuery::parse("created>2020-01-01 phone:1").is_err());
        assert!(UserQuery::parse("   ").is_err());
    }
}
