//! A plugin's parameters: the TOML table under its stage in the recipe.
//!
//! Plugins deserialize them into their own `#[serde(deny_unknown_fields)]` struct with
//! [`Params::parse`]; an error names the offending key so the engine can point at its line and column.

use serde::de::DeserializeOwned;

/// Parameters as written in the recipe (`[stages.<stage>.params]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    table: toml::Table,
}

/// A parameter the plugin refused, with the key (dotted path) it concerns when known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParamError {
    /// Dotted path of the offending key inside the params table, e.g. `levels` or `fallback.75+`.
    pub key: Option<String>,
    pub message: String,
}

impl ParamError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            key: Some(key.into()),
            message: message.into(),
        }
    }
}

impl Params {
    pub fn new(table: toml::Table) -> Self {
        Params { table }
    }

    /// Parses the serialized form that crosses the C ABI (a TOML document).
    pub fn from_toml_str(text: &str) -> Result<Self, ParamError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ParamError {
            key: None,
            message: format!("parameters are not valid TOML: {e}"),
        })?;
        Ok(Params { table })
    }

    /// Serialized form for the C ABI.
    pub fn to_toml_string(&self) -> String {
        self.table.to_string()
    }

    pub fn table(&self) -> &toml::Table {
        &self.table
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Deserializes into a plugin's parameter struct. Unknown keys and wrong types come back as a
    /// [`ParamError`] naming the key.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ParamError> {
        let value = toml::Value::Table(self.table.clone());
        serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.message().to_string();
            // The path already ends at an unknown field; at top level it may be empty.
            let key = if path == "." {
                message
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split('`').next())
                    .map(str::to_string)
            } else {
                Some(path)
            };
            ParamError { key, message }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Example {
        #[allow(dead_code)]
        level: f64,
    }

    fn params(text: &str) -> Params {
        Params::from_toml_str(text).expect("valid toml")
    }

    #[test]
    fn unknown_key_is_named() {
        let err = params("level = 0.95\nlevle = 1")
            .parse::<Example>()
            .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("levle"));
    }

    #[test]
    fn wrong_type_is_named() {
        let err = params("level = \"high\"").parse::<Example>().unwrap_err();
        assert_eq!(err.key.as_deref(), Some("level"));
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }

    #[test]
    fn round_trips_through_the_abi_form() {
        let p = params("level = 0.95");
        assert_eq!(Params::from_toml_str(&p.to_toml_string()).unwrap(), p);
    }
}
