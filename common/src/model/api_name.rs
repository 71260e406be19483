//! Salesforce object and field names that come from settings, checked before they reach a
//! query.

/// An object or field API name from settings (`Zuora__Subscription__c`): letters, digits and
/// underscores, starting with a letter, as Salesforce allows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiName(String);

impl ApiName {
    pub fn parse(name: &str) -> Result<ApiName, String> {
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && name.len() <= 80;
        if valid {
            Ok(ApiName(name.to_owned()))
        } else {
            Err(format!(
                "{name:?} is not a Salesforce API name (letters, digits and underscores, starting with a letter)"
            ))
        }
    }
}

impl std::fmt::Display for ApiName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
