//! The deployment agrees with itself and with the code: `infra/template.yaml` (SAM),
//! `statemachine/sync.asl.json`, the function crates under `functions/`, the settings of
//! `zdsync::config` and what each stage needs (`zdsync::stages::Stage::needs`).
//!
//! Each check returns the list of problems it found, so a drift names every disagreement at
//! once; the `drift_*` tests edit a copy of the real files and show each check catching it.
//! `scripts/check-infra.sh` covers what this test cannot: cfn-lint, checkov, asl-validator and
//! the arm64 build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use zdsync::config::{SecretKind, env_name, setting_env_names};
use zdsync::model::Instance;
use zdsync::snapshot::Source;
use zdsync::stages::{RunOptions, Stage, artifacts};
use zdsync::store::blob;

const HOURLY: &str = "cron(0 * * * ? *)";
/// SPEC §10: the seed says a run never needs 45 minutes; the state machine stops it at 50.
const EXECUTION_TIME_ALARM_MS: f64 = 2_700_000.0;
const STATE_MACHINE_TIMEOUT_SECONDS: u64 = 3000;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// The two files under test, parsed.
struct Deployment {
    template: Value,
    asl_text: String,
}

impl Deployment {
    fn load() -> Deployment {
        let root = workspace_root();
        let template_text = std::fs::read_to_string(root.join("infra/template.yaml"))
            .expect("infra/template.yaml is readable");
        let template: Value = serde_saphyr::from_str(&template_text)
            .expect("infra/template.yaml is YAML without short-form (!Ref) tags");
        let asl_text = std::fs::read_to_string(root.join("statemachine/sync.asl.json"))
            .expect("statemachine/sync.asl.json is readable");
        Deployment { template, asl_text }
    }

    fn asl(&self) -> Value {
        serde_json::from_str(&self.asl_text).expect("the ASL is JSON")
    }

    fn resources(&self) -> &serde_json::Map<String, Value> {
        self.template["Resources"]
            .as_object()
            .expect("the template has Resources")
    }

    fn resource(&self, id: &str) -> Option<&Value> {
        self.resources().get(id)
    }

    fn resources_of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.resources()
            .iter()
            .filter(move |(_, r)| r["Type"] == ty)
            .map(|(id, r)| (id.as_str(), r))
    }

    fn type_of(&self, id: &str) -> Option<&str> {
        self.resource(id).and_then(|r| r["Type"].as_str())
    }

    /// The one `AWS::Serverless::StateMachine`.
    fn state_machine(&self) -> (&str, &Value) {
        let machines: Vec<_> = self
            .resources_of_type("AWS::Serverless::StateMachine")
            .collect();
        assert_eq!(
            machines.len(),
            1,
            "the template defines exactly one AWS::Serverless::StateMachine"
        );
        machines[0]
    }

    /// Every `AWS::Serverless::Function`, with what the checks need to know about it.
    fn functions(&self) -> Vec<Function> {
        let globals = &self.template["Globals"]["Function"];
        self.resources_of_type("AWS::Serverless::Function")
            .map(|(id, resource)| {
                let props = &resource["Properties"];
                // SAM merges Globals into each function; the function's own value wins.
                let mut env = BTreeMap::new();
                for source in [globals, props] {
                    if let Some(vars) = source["Environment"]["Variables"].as_object() {
                        env.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                }
                let property = |name: &str| {
                    Some(&props[name])
                        .filter(|v| !v.is_null())
                        .unwrap_or(&globals[name])
                        .clone()
                };
                let role = getatt(&props["Role"]).map(|(role, _)| role.to_owned());
                Function {
                    id: id.to_owned(),
                    binary: resource["Metadata"]["BuildProperties"]["Binary"]
                        .as_str()
                        .map(str::to_owned),
                    build_method: resource["Metadata"]["BuildMethod"].clone(),
                    runtime: property("Runtime"),
                    architectures: property("Architectures"),
                    handler: property("Handler"),
                    code_uri: property("CodeUri"),
                    env,
                    statements: role
                        .as_deref()
                        .map(|r| self.role_statements(r))
                        .unwrap_or_default(),
                    role,
                }
            })
            .collect()
    }

    /// Every statement a role is granted: its inline policies and any `AWS::IAM::Policy`
    /// attached to it. Both branches of a conditional (`Fn::If`) statement count.
    fn role_statements(&self, role: &str) -> Vec<Value> {
        let mut documents = Vec::new();
        if let Some(r) = self.resource(role) {
            for policy in r["Properties"]["Policies"].as_array().into_iter().flatten() {
                documents.push(policy["PolicyDocument"].clone());
            }
        }
        for (_, policy) in self.resources_of_type("AWS::IAM::Policy") {
            let attached = policy["Properties"]["Roles"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| reference(r) == Some(role));
            if attached {
                documents.push(policy["Properties"]["PolicyDocument"].clone());
            }
        }
        documents
            .iter()
            .flat_map(|doc| as_list(&doc["Statement"]))
            .flat_map(if_branches)
            .collect()
    }

    /// `name → resource id` of the state machine's definition substitutions that are a
    /// `Fn::GetAtt [<id>, Arn]`.
    fn substitutions(&self) -> BTreeMap<String, Value> {
        let (_, machine) = self.state_machine();
        machine["Properties"]["DefinitionSubstitutions"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The `${…}` names of the ASL (the local executor's reading of them).
    fn asl_placeholders(&self) -> BTreeSet<String> {
        zdsync_cli::asl::placeholders(&self.asl_text)
    }
}

#[derive(Debug)]
struct Function {
    id: String,
    binary: Option<String>,
    build_method: Value,
    runtime: Value,
    architectures: Value,
    handler: Value,
    code_uri: Value,
    env: BTreeMap<String, Value>,
    role: Option<String>,
    statements: Vec<Value>,
}

impl Function {
    fn stage(&self) -> Option<Stage> {
        self.binary.as_deref().and_then(Stage::from_function)
    }

    /// Statements allowing any action for which `matches` holds.
    fn statements_allowing<'a>(
        &'a self,
        matches: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.statements
            .iter()
            .filter(move |s| s["Effect"] == "Allow" && actions(s).iter().any(|a| matches(a)))
    }
}

// --- intrinsics ----------------------------------------------------------------------------

/// `{Ref: X}` → X.
fn reference(v: &Value) -> Option<&str> {
    v.get("Ref").and_then(Value::as_str)
}

/// `{Fn::GetAtt: [X, Attr]}` or `{Fn::GetAtt: "X.Attr"}` → (X, Attr).
fn getatt(v: &Value) -> Option<(&str, &str)> {
    match v.get("Fn::GetAtt")? {
        Value::Array(parts) => Some((parts.first()?.as_str()?, parts.get(1)?.as_str()?)),
        Value::String(dotted) => dotted.split_once('.'),
        _ => None,
    }
}

/// `{Fn::Sub: "text"}` or `{Fn::Sub: ["text", {…}]}` → text.
fn sub(v: &Value) -> Option<&str> {
    match v.get("Fn::Sub")? {
        Value::String(s) => Some(s),
        Value::Array(parts) => parts.first()?.as_str(),
        _ => None,
    }
}

/// A value that is one item or a list, as a list (IAM `Action`, `Resource`, `Statement`).
fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// Both outcomes of `{Fn::If: [cond, a, b]}` (minus `AWS::NoValue`); any other value as is.
fn if_branches(v: Value) -> Vec<Value> {
    match v.get("Fn::If").and_then(Value::as_array) {
        Some(parts) if parts.len() == 3 => parts[1..]
            .iter()
            .filter(|b| reference(b) != Some("AWS::NoValue"))
            .flat_map(|b| if_branches(b.clone()))
            .collect(),
        _ => vec![v],
    }
}

fn actions(statement: &Value) -> Vec<String> {
    as_list(&statement["Action"])
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// Whether an IAM action pattern (`s3:Get*`, `*`) covers `action`, case-insensitively.
fn covers(pattern: &str, action: &str) -> bool {
    let (pattern, action) = (pattern.to_lowercase(), action.to_lowercase());
    match pattern.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => pattern == action,
    }
}

// --- checks --------------------------------------------------------------------------------

/// Every `${…}` of the ASL is a definition substitution holding the ARN of a function of the
/// template, named as the code names it (`Stage::substitution`); no substitution is unused.
fn check_substitutions(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let subs = d.substitutions();
    let placeholders = d.asl_placeholders();
    let functions = d.functions();
    for name in &placeholders {
        let Some(value) = subs.get(name) else {
            problems.push(format!(
                "the ASL uses ${{{name}}} but the state machine has no DefinitionSubstitutions entry {name}"
            ));
            continue;
        };
        let Some((target, attribute)) = getatt(value) else {
            problems.push(format!(
                "DefinitionSubstitutions {name} is {value}, not Fn::GetAtt [<function>, Arn]"
            ));
            continue;
        };
        if attribute != "Arn" || d.type_of(target) != Some("AWS::Serverless::Function") {
            problems.push(format!(
                "DefinitionSubstitutions {name} points at {target}.{attribute}, not the Arn of an AWS::Serverless::Function"
            ));
            continue;
        }
        let stage = functions
            .iter()
            .find(|f| f.id == target)
            .and_then(Function::stage);
        if let Some(stage) = stage
            && stage.substitution() != name
        {
            problems.push(format!(
                "DefinitionSubstitutions {name} holds the {stage} function, which the code calls ${{{}}}",
                stage.substitution()
            ));
        }
    }
    for name in subs.keys() {
        if !placeholders.contains(name) {
            problems.push(format!(
                "DefinitionSubstitutions {name} is not used by statemachine/sync.asl.json"
            ));
        }
    }
    problems
}

/// Every function of the template is called by the state machine.
fn check_every_function_is_used(d: &Deployment) -> Vec<String> {
    let subs = d.substitutions();
    let placeholders = d.asl_placeholders();
    d.functions()
        .iter()
        .filter(|f| {
            !subs.iter().any(|(name, value)| {
                placeholders.contains(name) && getatt(value).map(|(id, _)| id) == Some(&f.id)
            })
        })
        .map(|f| {
            format!(
                "function {} is not referenced by any ${{…}} of statemachine/sync.asl.json",
                f.id
            )
        })
        .collect()
}

/// The package names of `functions/*/Cargo.toml`: the workspace's Lambda binaries.
fn workspace_function_binaries() -> BTreeSet<String> {
    let dir = workspace_root().join("functions");
    std::fs::read_dir(&dir)
        .expect("functions/ is readable")
        .filter_map(|entry| {
            let manifest = entry.ok()?.path().join("Cargo.toml");
            let text = std::fs::read_to_string(manifest).ok()?;
            let doc: toml::Table = text.parse().expect("a function's Cargo.toml is TOML");
            Some(doc.get("package")?.get("name")?.as_str()?.to_owned())
        })
        .collect()
}

/// Each function is built by cargo-lambda from a workspace binary for arm64
/// `provided.al2023`; every workspace function binary is deployed, once; every stage of the
/// code has its function.
fn check_builds(d: &Deployment, binaries: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let functions = d.functions();
    let template_dir = workspace_root().join("infra");
    let mut deployed = BTreeMap::new();
    for f in &functions {
        let id = &f.id;
        if f.build_method != "rust-cargolambda" {
            problems.push(format!(
                "{id}: Metadata.BuildMethod is {}, not rust-cargolambda",
                f.build_method
            ));
        }
        let Some(binary) = &f.binary else {
            problems.push(format!("{id}: no Metadata.BuildProperties.Binary"));
            continue;
        };
        if !binaries.contains(binary) {
            problems.push(format!(
                "{id}: Binary {binary} is not a package of functions/*/Cargo.toml ({binaries:?})"
            ));
        }
        if let Some(other) = deployed.insert(binary.clone(), id.clone()) {
            problems.push(format!("{id} and {other} both deploy {binary}"));
        }
        if f.stage().is_none() {
            problems.push(format!("{id}: Binary {binary} names no zdsync stage"));
        }
        for (what, value, expected) in [
            ("Runtime", &f.runtime, json!("provided.al2023")),
            ("Architectures", &f.architectures, json!(["arm64"])),
            ("Handler", &f.handler, json!("bootstrap")),
        ] {
            if *value != expected {
                problems.push(format!("{id}: {what} is {value}, not {expected}"));
            }
        }
        // sam build runs `cargo lambda build --bin <Binary>` in CodeUri: the workspace root.
        match f.code_uri.as_str() {
            Some(uri) => {
                let dir = template_dir.join(uri);
                let is_root = dir
                    .canonicalize()
                    .ok()
                    .zip(workspace_root().canonicalize().ok())
                    .is_some_and(|(a, b)| a == b);
                if !is_root {
                    problems.push(format!(
                        "{id}: CodeUri {uri} is not the workspace root (relative to infra/)"
                    ));
                }
            }
            None => problems.push(format!("{id}: CodeUri is not a local path")),
        }
    }
    for binary in binaries {
        if !deployed.contains_key(binary) {
            problems.push(format!(
                "functions/ builds {binary} but no template function deploys it"
            ));
        }
    }
    for stage in Stage::ALL {
        if !functions.iter().any(|f| f.stage() == Some(stage)) {
            problems.push(format!("no template function runs the {stage} stage"));
        }
    }
    problems
}

/// Environment variables are zdsync settings; the endpoints and store are set, the store is
/// the artifact bucket, and no credential is ever a plain variable.
/// The allocator's own setting, the one variable in a function's environment that is not
/// zdsync's.
const ALLOCATOR_PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";
const PURGE_DELAY_MS: &str = "10";

fn check_environment(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let known = setting_env_names();
    // Filled from Secrets Manager at cold start, never from the environment.
    let credentials = [
        "salesforce.client_secret",
        "salesforce.password",
        "zendesk.global.token",
        "zendesk.usgov.token",
        "slack.webhook_url",
    ]
    .map(env_name);
    for f in d.functions() {
        let id = &f.id;
        // Freed memory back to the system at once: the memory sizes are the peaks `zdsync
        // bench` measured with this setting (its functions' environment sets the same).
        if f.env.get(ALLOCATOR_PURGE_DELAY) != Some(&Value::from(PURGE_DELAY_MS)) {
            problems.push(format!(
                "{id}: environment variable {ALLOCATOR_PURGE_DELAY} is not \"{PURGE_DELAY_MS}\""
            ));
        }
        for name in f.env.keys() {
            if !known.contains(name) && name != ALLOCATOR_PURGE_DELAY {
                problems.push(format!(
                    "{id}: environment variable {name} is not a zdsync setting (zdsync::config::setting_env_names)"
                ));
            }
            if credentials.contains(name) {
                problems.push(format!(
                    "{id}: {name} is a credential; it belongs in Secrets Manager"
                ));
            }
        }
        for required in [
            "store.url",
            "zendesk.global.url",
            "zendesk.usgov.url",
            "salesforce.login_url",
        ]
        .map(env_name)
        {
            if !f.env.contains_key(&required) {
                problems.push(format!("{id}: environment variable {required} is not set"));
            }
        }
        if let Some(store) = f.env.get(&env_name("store.url")) {
            let bucket = sub(store)
                .and_then(|s| s.strip_prefix("s3://${"))
                .and_then(|s| s.strip_suffix("}/"));
            if bucket.and_then(|b| d.type_of(b)) != Some("AWS::S3::Bucket") {
                problems.push(format!(
                    "{id}: {} is {store}, not Fn::Sub s3://${{<bucket>}}/",
                    env_name("store.url")
                ));
            }
        }
    }
    problems
}

/// The secret kind a secret resource holds, from its name `zdsync/<env>/<kind>`.
fn secret_kind(d: &Deployment, id: &str) -> Option<SecretKind> {
    let name = sub(&d.resource(id)?["Properties"]["Name"])?;
    match name.rsplit('/').next()? {
        "salesforce" => Some(SecretKind::Salesforce),
        "zendesk-global" => Some(SecretKind::Zendesk(Instance::Global)),
        "zendesk-usgov" => Some(SecretKind::Zendesk(Instance::Usgov)),
        "slack" => Some(SecretKind::Slack),
        "overrides-token" => Some(SecretKind::Overrides),
        _ => None,
    }
}

/// Each function gets the ARN variables of exactly the secrets its stage reads (Slack may be
/// switched off by a condition), each pointing at the right secret, and may read only those.
fn check_secrets(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let all_kinds = [
        SecretKind::Salesforce,
        SecretKind::Zendesk(Instance::Global),
        SecretKind::Zendesk(Instance::Usgov),
        SecretKind::Slack,
        SecretKind::Overrides,
    ];
    for f in d.functions() {
        let id = &f.id;
        let Some(stage) = f.stage() else { continue };
        let needed = stage.secrets();
        for kind in all_kinds {
            let var = env_name(kind.arn_setting());
            match (f.env.get(&var), needed.contains(&kind)) {
                (Some(_), false) => problems.push(format!(
                    "{id}: the {stage} stage reads no {kind:?} secret, yet {var} is set"
                )),
                (None, true) => problems.push(format!(
                    "{id}: the {stage} stage reads the {kind:?} secret, but {var} is not set"
                )),
                (Some(value), true) => {
                    // A plain Ref, or a condition choosing between the Ref and nothing.
                    for branch in if_branches(value.clone()) {
                        let points_at = reference(&branch).and_then(|s| secret_kind(d, s));
                        if points_at != Some(kind) {
                            problems.push(format!(
                                "{id}: {var} is {branch}, not a Ref to the {kind:?} secret"
                            ));
                        }
                    }
                }
                (None, false) => {}
            }
        }
        for statement in f.statements_allowing(|a| covers(a, "secretsmanager:GetSecretValue")) {
            for resource in as_list(&statement["Resource"]) {
                let kind = reference(&resource).and_then(|s| secret_kind(d, s));
                if !kind.is_some_and(|k| needed.contains(&k)) {
                    problems.push(format!(
                        "{id}: its role may read secret {resource}, which the {stage} stage does not need"
                    ));
                }
            }
        }
        for kind in &needed {
            let granted = f
                .statements_allowing(|a| covers(a, "secretsmanager:GetSecretValue"))
                .flat_map(|s| as_list(&s["Resource"]))
                .any(|r| reference(&r).and_then(|s| secret_kind(d, s)) == Some(*kind));
            if !granted {
                problems.push(format!(
                    "{id}: its role may not read the {kind:?} secret the {stage} stage needs"
                ));
            }
        }
    }
    for (id, _) in d.resources_of_type("AWS::SecretsManager::Secret") {
        if secret_kind(d, id).is_none() {
            problems.push(format!(
                "secret {id} is not named zdsync/<env>/(salesforce|zendesk-global|zendesk-usgov|slack|overrides-token)"
            ));
        }
        let props = &d.resource(id).expect("listed")["Properties"];
        if !props["SecretString"].is_null() || !props["GenerateSecretString"].is_null() {
            problems.push(format!(
                "secret {id} gets its value from the template; the operator puts it after deploy"
            ));
        }
    }
    problems
}

/// The stages that list the state machine's running executions: the overlap guard, and the
/// sync, which a redrive reaches without passing the guard again.
const LISTERS: [Stage; 2] = [Stage::Guard, Stage::Sync];

/// Only the guard and the sync may list executions, and only of this state machine.
fn check_list_executions(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let (_, machine) = d.state_machine();
    let machine_name = sub(&machine["Properties"]["Name"]).unwrap_or_default();
    let mut may: BTreeSet<String> = BTreeSet::new();
    for f in d.functions() {
        for statement in f.statements_allowing(|a| covers(a, "states:ListExecutions")) {
            if !f.stage().is_some_and(|stage| LISTERS.contains(&stage)) {
                problems.push(format!(
                    "{}: only the guard and the sync may call states:ListExecutions",
                    f.id
                ));
                continue;
            }
            may.insert(f.stage().map(|s| s.to_string()).unwrap_or_default());
            for resource in as_list(&statement["Resource"]) {
                let arn = sub(&resource).unwrap_or_default();
                let names_it = !machine_name.is_empty()
                    && arn.starts_with("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:")
                    && arn.ends_with(&format!(":stateMachine:{machine_name}"));
                if !names_it {
                    problems.push(format!(
                        "{}: states:ListExecutions on {resource}, not on this state machine ({machine_name})",
                        f.id
                    ));
                }
            }
        }
    }
    for stage in LISTERS {
        if !may.contains(&stage.to_string()) {
            problems.push(format!(
                "the {stage} role may not call states:ListExecutions"
            ));
        }
    }
    // No other role of the template either (the state machine's, a stray policy).
    let function_roles: BTreeSet<String> =
        d.functions().into_iter().filter_map(|f| f.role).collect();
    for (role, _) in d.resources_of_type("AWS::IAM::Role") {
        if function_roles.contains(role) {
            continue;
        }
        let lists = d.role_statements(role).iter().any(|s| {
            s["Effect"] == "Allow"
                && actions(s)
                    .iter()
                    .any(|a| covers(a, "states:ListExecutions"))
        });
        if lists {
            problems.push(format!("role {role} may call states:ListExecutions"));
        }
    }
    problems
}

/// The snapshots a stage keeps (SPEC §12): the gathers theirs, the sync every one it folds its
/// writes into.
fn snapshots_of(stage: Option<Stage>) -> Vec<Source> {
    let orgs = Instance::ALL.map(Source::ZendeskOrgs);
    let users = Source::ZendeskUsers(Instance::Usgov);
    match stage {
        Some(Stage::GatherOrgs) => orgs.to_vec(),
        Some(Stage::GatherUsers) => vec![users],
        Some(Stage::GatherAccounts) => vec![Source::SalesforceAccounts, Source::SalesforcePartners],
        Some(Stage::GatherContacts) => vec![Source::SalesforceContacts],
        Some(Stage::Sync) => orgs.into_iter().chain([users]).collect(),
        _ => Vec::new(),
    }
}

/// Stage roles reach S3 objects only under runs/ and blobs/ (plus the overrides key, for
/// process, and the snapshots under state/ each stage keeps), list
/// only with an s3:prefix condition, and every reader can tell a missing artifact. Every stage
/// but the guard reads and writes blobs, and no more than that.
fn check_s3_access(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    for f in d.functions() {
        let id = &f.id;
        let mut reads_runs = false;
        let mut reads_state = false;
        let mut lists_runs = false;
        let mut lists_state = false;
        let mut lists_blobs = false;
        let mut blob_actions = BTreeSet::new();
        let mut writes_latest_run = false;
        for statement in f.statements_allowing(|a| a.to_lowercase().starts_with("s3:") || a == "*")
        {
            let s3_actions = actions(statement)
                .into_iter()
                .filter(|a| a.to_lowercase().starts_with("s3:") || a == "*");
            for action in s3_actions {
                let resources = as_list(&statement["Resource"]);
                match action.as_str() {
                    "s3:GetObject" | "s3:PutObject" => {
                        for resource in resources {
                            let arn = sub(&resource).unwrap_or_default();
                            let latest_run = arn.ends_with(&format!("/{}", artifacts::LATEST_RUN));
                            writes_latest_run |= latest_run && action == "s3:PutObject";
                            let snapshot = arn.contains("/state/");
                            let blobs = arn.ends_with(&format!("/{}*", blob::BLOBS_PREFIX));
                            if blobs {
                                blob_actions.insert(action.clone());
                            }
                            reads_state |= snapshot && action == "s3:GetObject";
                            reads_runs |= !snapshot && !blobs && action == "s3:GetObject";
                            let allowed = arn.ends_with("/runs/*")
                                || blobs
                                || snapshots_of(f.stage()).iter().any(|source| {
                                    arn.ends_with(&format!("/{}", source.key()))
                                        || (f.stage() != Some(Stage::Sync)
                                            && arn.ends_with(&format!("/{}", source.mark_key())))
                                })
                                || (f.stage() == Some(Stage::Process)
                                    && action == "s3:GetObject"
                                    && arn.ends_with("/${OverridesKey}"))
                                || (f.stage() == Some(Stage::Summarize)
                                    && action == "s3:PutObject"
                                    && latest_run);
                            if !allowed {
                                problems.push(format!(
                                    "{id}: {action} on {resource}, outside runs/*"
                                ));
                            }
                        }
                    }
                    "s3:ListBucket" => {
                        let prefixes = [
                            &statement["Condition"]["StringLike"]["s3:prefix"],
                            &statement["Condition"]["StringEquals"]["s3:prefix"],
                        ];
                        if prefixes.iter().all(|p| p.is_null()) {
                            problems.push(format!(
                                "{id}: s3:ListBucket without an s3:prefix condition"
                            ));
                        }
                        lists_runs |= as_list(prefixes[0]).contains(&json!("runs/*"));
                        lists_state |= as_list(prefixes[0]).contains(&json!("state/*"));
                        lists_blobs |= as_list(prefixes[0])
                            .contains(&json!(format!("{}*", blob::BLOBS_PREFIX)));
                    }
                    other => problems.push(format!(
                        "{id}: S3 action {other}; the stages need only GetObject, PutObject, ListBucket"
                    )),
                }
            }
        }
        // The summarize stage writes the pointer to the latest run after every summary.
        if f.stage() == Some(Stage::Summarize) && !writes_latest_run {
            problems.push(format!(
                "{id}: may not s3:PutObject {}, which the summarize stage writes",
                artifacts::LATEST_RUN
            ));
        }
        if reads_runs && !lists_runs {
            problems.push(format!(
                "{id}: reads artifacts without s3:ListBucket on runs/*, so a missing one reads as AccessDenied"
            ));
        }
        // Every stage but the guard writes artifacts, and any artifact of a run may be a blob
        // behind a pointer: each reads, writes and renews blobs (HeadObject and CopyObject
        // are GetObject and PutObject), and tells a missing one.
        let blob_needs = BTreeSet::from(["s3:GetObject".to_owned(), "s3:PutObject".to_owned()]);
        if f.stage() != Some(Stage::Guard) && blob_actions != blob_needs {
            problems.push(format!(
                "{id}: may {blob_actions:?} on blobs/*; a stage's big artifacts are blobs there, which it must read, write and renew (s3:GetObject, s3:PutObject)"
            ));
        }
        if !blob_actions.is_empty() && !lists_blobs {
            problems.push(format!(
                "{id}: uses blobs without s3:ListBucket on blobs/*, so an absent blob reads as AccessDenied instead of being written"
            ));
        }
        if reads_state && !lists_state {
            problems.push(format!(
                "{id}: reads snapshots without s3:ListBucket on state/*, so a missing one reads as AccessDenied"
            ));
        }
        if f.stage() == Some(Stage::Guard)
            && f.statements_allowing(|a| a.starts_with("s3:"))
                .next()
                .is_some()
        {
            problems.push(format!(
                "{id}: the guard writes nothing and needs no S3 access"
            ));
        }
    }
    problems
}

/// The bucket expires runs/ and blobs/, and keeps a blob longer than a run by more than the
/// age at which the stages renew a blob they point to again, so no blob a kept run points to
/// expires (common/src/store/blob.rs).
fn check_blob_lifecycle(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let rules = d
        .resource("ArtifactBucket")
        .map(|b| as_list(&b["Properties"]["LifecycleConfiguration"]["Rules"]))
        .unwrap_or_default();
    let expiry_of = |prefix: &str| {
        rules
            .iter()
            .find(|r| r["Prefix"] == prefix && r["Status"] == "Enabled")
            .and_then(|r| reference(&r["ExpirationInDays"]).map(str::to_owned))
    };
    let default_of = |parameter: &str| d.template["Parameters"][parameter]["Default"].as_i64();
    let min_of = |parameter: &str| d.template["Parameters"][parameter]["MinValue"].as_i64();
    let (Some(runs), Some(blobs)) = (expiry_of("runs/"), expiry_of(blob::BLOBS_PREFIX)) else {
        problems.push(format!(
            "ArtifactBucket: no enabled expiry of runs/ and of {} (each by a parameter)",
            blob::BLOBS_PREFIX
        ));
        return problems;
    };
    let margin = blob::BLOB_REFRESH_DAYS + 1;
    match (default_of(&runs), default_of(&blobs)) {
        (Some(r), Some(b)) if b >= r + margin => {}
        (r, b) => problems.push(format!(
            "{blobs} defaults to {b:?} days, {runs} to {r:?}: blobs must be kept at least {margin} days longer than runs"
        )),
    }
    if min_of(&blobs).is_none_or(|m| m < margin + 1) {
        problems.push(format!(
            "{blobs}: MinValue must be at least {}, or blobs could expire before the stages renew them",
            margin + 1
        ));
    }
    problems
}

/// The state machine: STANDARD, this ASL, no execution data in its logs, its role invokes
/// exactly the template's functions, and the run timeout stays in the ASL.
fn check_state_machine(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let (_, machine) = d.state_machine();
    let props = &machine["Properties"];
    if props["Type"] != "STANDARD" {
        problems.push(format!(
            "state machine Type is {}, not STANDARD",
            props["Type"]
        ));
    }
    let uri = props["DefinitionUri"].as_str().unwrap_or_default();
    let points_at_asl = workspace_root()
        .join("infra")
        .join(uri)
        .canonicalize()
        .ok()
        .zip(
            workspace_root()
                .join("statemachine/sync.asl.json")
                .canonicalize()
                .ok(),
        )
        .is_some_and(|(a, b)| a == b);
    if !points_at_asl {
        problems.push(format!(
            "DefinitionUri {uri:?} is not statemachine/sync.asl.json (relative to infra/)"
        ));
    }
    if props["Logging"]["IncludeExecutionData"] != false {
        problems.push("state machine logging must not include execution data".into());
    }
    if d.asl()["TimeoutSeconds"] != STATE_MACHINE_TIMEOUT_SECONDS {
        problems.push(format!(
            "the ASL's TimeoutSeconds is {}, not {STATE_MACHINE_TIMEOUT_SECONDS} (SPEC §10)",
            d.asl()["TimeoutSeconds"]
        ));
    }
    let Some((role, _)) = getatt(&props["Role"]) else {
        problems.push("the state machine has no Role: Fn::GetAtt [<role>, Arn]".into());
        return problems;
    };
    let functions: BTreeSet<String> = d.functions().into_iter().map(|f| f.id).collect();
    let mut invoked = BTreeSet::new();
    for statement in d.role_statements(role) {
        for action in actions(&statement) {
            if action.starts_with("lambda:") || action == "*" {
                if action != "lambda:InvokeFunction" {
                    problems.push(format!(
                        "state machine role: {action}; it needs only lambda:InvokeFunction"
                    ));
                }
                for resource in as_list(&statement["Resource"]) {
                    match getatt(&resource) {
                        Some((id, "Arn")) if functions.contains(id) => {
                            invoked.insert(id.to_owned());
                        }
                        _ => problems.push(format!(
                            "state machine role: {action} on {resource}, not a function of this template"
                        )),
                    }
                }
            }
            if action.starts_with("states:")
                || action.starts_with("s3:")
                || action.starts_with("secretsmanager:")
            {
                problems.push(format!(
                    "state machine role: {action}; the stages do that, not the state machine"
                ));
            }
        }
    }
    for missing in functions.difference(&invoked) {
        problems.push(format!("the state machine's role may not invoke {missing}"));
    }
    problems
}

/// Exactly one schedule, hourly by default or every few minutes, switchable by ScheduleState,
/// sending input the guard accepts.
fn check_schedule(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let (_, machine) = d.state_machine();
    let schedules: Vec<(&String, &Value)> = machine["Properties"]["Events"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, e)| e["Type"] == "Schedule" || e["Type"] == "ScheduleV2")
        .collect();
    let [(name, event)] = schedules.as_slice() else {
        problems.push(format!(
            "the state machine has {} schedule events, not one",
            schedules.len()
        ));
        return problems;
    };
    let props = &event["Properties"];
    let expression = if props["Schedule"].is_null() {
        &props["ScheduleExpression"]
    } else {
        &props["Schedule"]
    };
    // A parameter: hourly unless the operator picks a schedule of minutes, no more often than
    // every 5 (a run must be able to finish; the guard skips an overlap).
    match reference(expression) {
        Some(param) => {
            let parameter = &d.template["Parameters"][param];
            if parameter["Default"] != json!(HOURLY) {
                problems.push(format!(
                    "schedule {name}: parameter {param} defaults to {}, not {HOURLY}",
                    parameter["Default"]
                ));
            }
            let allowed = as_list(&parameter["AllowedValues"]);
            for value in &allowed {
                let every_minutes = value
                    .as_str()
                    .and_then(|v| v.strip_prefix("rate("))
                    .and_then(|v| v.strip_suffix(" minutes)"))
                    .and_then(|n| n.parse::<u32>().ok());
                if *value != json!(HOURLY) && !every_minutes.is_some_and(|n| (5..60).contains(&n)) {
                    problems.push(format!(
                        "schedule {name}: parameter {param} allows {value}, not hourly or every 5 to 59 minutes"
                    ));
                }
            }
            if allowed.is_empty() {
                problems.push(format!(
                    "schedule {name}: parameter {param} has no AllowedValues"
                ));
            }
        }
        None => problems.push(format!(
            "schedule {name} is {expression}, not a Ref to a schedule parameter"
        )),
    }
    match reference(&props["State"]) {
        Some(param) => {
            let allowed = &d.template["Parameters"][param]["AllowedValues"];
            if *allowed != json!(["ENABLED", "DISABLED"]) {
                problems.push(format!(
                    "schedule {name}: parameter {param} allows {allowed}, not [ENABLED, DISABLED]"
                ));
            }
        }
        None => problems.push(format!(
            "schedule {name}: State is {}, not a Ref to a parameter",
            props["State"]
        )),
    }
    // Without Input the execution input is the EventBridge event, which the guard refuses.
    let input = props["Input"].as_str().unwrap_or_default();
    if let Err(e) = serde_json::from_str::<RunOptions>(input) {
        problems.push(format!(
            "schedule {name}: Input {input:?} is not execution input the guard accepts: {e}"
        ));
    }
    problems
}

/// The three alarms on this state machine's metrics, each notifying an encrypted topic.
fn check_alarms(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let (machine_id, _) = d.state_machine();
    let wanted = [
        ("ExecutionsFailed", "GreaterThanOrEqualToThreshold", 1.0),
        ("ExecutionsTimedOut", "GreaterThanOrEqualToThreshold", 1.0),
        (
            "ExecutionTime",
            "GreaterThanThreshold",
            EXECUTION_TIME_ALARM_MS,
        ),
    ];
    for (metric, operator, threshold) in wanted {
        let alarms: Vec<(&str, &Value)> = d
            .resources_of_type("AWS::CloudWatch::Alarm")
            .filter(|(_, a)| a["Properties"]["MetricName"] == metric)
            .collect();
        let [(id, alarm)] = alarms.as_slice() else {
            problems.push(format!("{} alarms on {metric}, not one", alarms.len()));
            continue;
        };
        let p = &alarm["Properties"];
        if p["Namespace"] != "AWS/States" {
            problems.push(format!(
                "{id}: namespace {}, not AWS/States",
                p["Namespace"]
            ));
        }
        let on_machine = as_list(&p["Dimensions"]).iter().any(|dim| {
            dim["Name"] == "StateMachineArn" && reference(&dim["Value"]) == Some(machine_id)
        });
        if !on_machine {
            problems.push(format!("{id}: not on the StateMachineArn of {machine_id}"));
        }
        if p["ComparisonOperator"] != operator || p["Threshold"].as_f64() != Some(threshold) {
            problems.push(format!(
                "{id}: {} {}, not {operator} {threshold}",
                p["ComparisonOperator"], p["Threshold"]
            ));
        }
        let topics: Vec<Value> = as_list(&p["AlarmActions"]);
        let notifies = topics.iter().any(|t| {
            reference(t).is_some_and(|topic| {
                d.type_of(topic) == Some("AWS::SNS::Topic")
                    && !d.resource(topic).expect("typed")["Properties"]["KmsMasterKeyId"].is_null()
            })
        });
        if !notifies {
            problems.push(format!("{id}: does not notify an encrypted SNS topic"));
        }
    }
    problems
}

/// A stopped execution (failed, timed out, aborted) gets its summary and alert: one rule on the
/// state machine's status changes invokes the summarize function, which may read the history
/// of this state machine's executions — and no other role may.
fn check_failed_run_rule(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let (machine_id, machine) = d.state_machine();
    let machine_name = sub(&machine["Properties"]["Name"]).unwrap_or_default();
    let summarize: Vec<Function> = d
        .functions()
        .into_iter()
        .filter(|f| f.stage() == Some(Stage::Summarize))
        .collect();
    let [summarize] = summarize.as_slice() else {
        return vec![format!("{} summarize functions, not one", summarize.len())];
    };
    let rules: Vec<(&str, &Value)> = d
        .resources_of_type("AWS::Events::Rule")
        .filter(|(_, r)| r["Properties"]["EventPattern"]["source"] == json!(["aws.states"]))
        .collect();
    let [(rule_id, rule)] = rules.as_slice() else {
        return vec![format!(
            "{} rules on Step Functions events, not one",
            rules.len()
        )];
    };
    let pattern = &rule["Properties"]["EventPattern"];
    if pattern["detail-type"] != json!([zdsync::stages::summarize::STATUS_CHANGE]) {
        problems.push(format!(
            "{rule_id}: detail-type {}, not the event the summarize stage reads",
            pattern["detail-type"]
        ));
    }
    let statuses: BTreeSet<String> = as_list(&pattern["detail"]["status"])
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let wanted: BTreeSet<String> = ["FAILED", "TIMED_OUT", "ABORTED"].map(str::to_owned).into();
    if statuses != wanted {
        problems.push(format!("{rule_id}: statuses {statuses:?}, not {wanted:?}"));
    }
    let on_machine = as_list(&pattern["detail"]["stateMachineArn"])
        .iter()
        .any(|v| reference(v) == Some(machine_id));
    if !on_machine {
        problems.push(format!(
            "{rule_id}: not limited to {machine_id}'s executions"
        ));
    }
    let targets_summarize = as_list(&rule["Properties"]["Targets"])
        .iter()
        .any(|t| getatt(&t["Arn"]) == Some((summarize.id.as_str(), "Arn")));
    if !targets_summarize {
        problems.push(format!("{rule_id}: does not invoke {}", summarize.id));
    }
    let permitted = d
        .resources_of_type("AWS::Lambda::Permission")
        .any(|(_, p)| {
            let p = &p["Properties"];
            reference(&p["FunctionName"]) == Some(summarize.id.as_str())
                && p["Principal"] == "events.amazonaws.com"
                && getatt(&p["SourceArn"]) == Some((*rule_id, "Arn"))
        });
    if !permitted {
        problems.push(format!(
            "no permission lets {rule_id} (and only it) invoke {}",
            summarize.id
        ));
    }
    let history = |a: &str| covers(a, "states:GetExecutionHistory");
    let mut summarize_may = false;
    for f in d.functions() {
        for statement in f.statements_allowing(history) {
            if f.stage() != Some(Stage::Summarize) {
                problems.push(format!(
                    "{}: only summarize may read execution histories",
                    f.id
                ));
                continue;
            }
            summarize_may = true;
            for resource in as_list(&statement["Resource"]) {
                let arn = sub(&resource).unwrap_or_default();
                if arn
                    != format!(
                        "arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{machine_name}:*"
                    )
                {
                    problems.push(format!(
                        "{}: GetExecutionHistory on {resource}, not on {machine_name}'s executions",
                        f.id
                    ));
                }
            }
        }
    }
    if !summarize_may {
        problems.push(format!(
            "{} may not read the history that names a failed run's state",
            summarize.id
        ));
    }
    problems
}

fn assert_no_problems(check: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{check}: infra/template.yaml, statemachine/sync.asl.json and the code disagree:\n  - {}",
        problems.join("\n  - ")
    );
}

#[test]
fn every_asl_substitution_is_a_template_function() {
    assert_no_problems("substitutions", check_substitutions(&Deployment::load()));
}

#[test]
fn every_template_function_is_called_by_the_asl() {
    assert_no_problems(
        "functions",
        check_every_function_is_used(&Deployment::load()),
    );
}

#[test]
fn every_function_builds_a_workspace_binary_for_arm64() {
    let binaries = workspace_function_binaries();
    assert_eq!(
        binaries.len(),
        Stage::ALL.len(),
        "one crate per stage: {binaries:?}"
    );
    assert_no_problems("builds", check_builds(&Deployment::load(), &binaries));
}

#[test]
fn function_environments_hold_only_zdsync_settings() {
    assert_no_problems("environment", check_environment(&Deployment::load()));
}

#[test]
fn each_function_reads_only_the_secrets_its_stage_needs() {
    assert_no_problems("secrets", check_secrets(&Deployment::load()));
}

#[test]
fn only_the_guard_and_the_sync_list_executions() {
    assert_no_problems("ListExecutions", check_list_executions(&Deployment::load()));
}

#[test]
fn blobs_outlive_the_runs_that_point_to_them() {
    assert_no_problems("blob lifecycle", check_blob_lifecycle(&Deployment::load()));
}

#[test]
fn drift_in_blob_lifecycle_is_caught() {
    let short = after(
        |d| d.template["Parameters"]["BlobRetentionDays"]["Default"] = json!(90),
        check_blob_lifecycle,
    );
    assert!(short.contains("at least 31 days longer"), "{short}");
    let none = after(
        |d| {
            let rules = &mut d.template["Resources"]["ArtifactBucket"]["Properties"]["LifecycleConfiguration"]
                ["Rules"];
            rules
                .as_array_mut()
                .unwrap()
                .retain(|r| r["Prefix"] != "blobs/");
        },
        check_blob_lifecycle,
    );
    assert!(none.contains("no enabled expiry"), "{none}");
}

#[test]
fn artifact_access_is_limited_to_runs() {
    assert_no_problems("S3", check_s3_access(&Deployment::load()));
}

#[test]
fn the_state_machine_runs_this_asl_and_invokes_only_its_functions() {
    assert_no_problems("state machine", check_state_machine(&Deployment::load()));
}

#[test]
fn the_schedule_is_hourly_and_switchable() {
    assert_no_problems("schedule", check_schedule(&Deployment::load()));
}

#[test]
fn a_stopped_execution_is_summarized_and_alerted_by_its_own_rule() {
    assert_no_problems(
        "failed-run rule",
        check_failed_run_rule(&Deployment::load()),
    );
}

#[test]
fn drift_in_the_failed_run_rule_is_caught() {
    let succeeded_too = after(
        |d| {
            d.template["Resources"]["FailedRunRule"]["Properties"]["EventPattern"]["detail"]["status"] =
                json!(["FAILED", "TIMED_OUT"]);
        },
        check_failed_run_rule,
    );
    assert!(succeeded_too.contains("statuses"), "{succeeded_too}");
    let wide = after(
        |d| {
            role_statements_mut(d, "SummarizeRole").push(json!({
                "Effect": "Allow", "Action": "states:GetExecutionHistory", "Resource": "*"
            }))
        },
        check_failed_run_rule,
    );
    assert!(wide.contains("not on"), "{wide}");
    let other = after(
        |d| {
            role_statements_mut(d, "SyncRole").push(json!({
                "Effect": "Allow", "Action": "states:*",
                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${EnvironmentName}-zdsync:*"}
            }))
        },
        check_failed_run_rule,
    );
    assert!(other.contains("only summarize may read"), "{other}");
    let unpermitted = after(
        |d| {
            d.template["Resources"]["FailedRunPermission"]["Properties"]["Principal"] =
                json!("sns.amazonaws.com");
        },
        check_failed_run_rule,
    );
    assert!(unpermitted.contains("no permission"), "{unpermitted}");
}

#[test]
fn alarms_watch_failures_timeouts_and_slow_runs() {
    assert_no_problems("alarms", check_alarms(&Deployment::load()));
}

/// The names the stages publish: every metric an EMF record of a sync (or of any stage) holds.
fn emitted_metrics() -> BTreeSet<String> {
    let mut stats = zdsync::stages::StageStats::default();
    for count in zdsync::model::SyncResult::default().counts() {
        stats.counts.insert(count.0.to_owned(), 0);
    }
    // A stage that called Salesforce also reports the org's daily allowance.
    stats.calls.0.insert(
        "salesforce".into(),
        zdsync::calls::ServiceCalls {
            allowance: Some(zdsync::calls::Allowance { used: 1, limit: 10 }),
            ..Default::default()
        },
    );
    let record = zdsync::metrics::emf_record("sync", Some("global"), &stats, 0);
    record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| m["Name"].as_str().map(str::to_owned))
        .collect()
}

/// Record errors and guard trips alarm on the metrics the syncs emit in their logs, and the
/// dashboard graphs only metrics that exist: the stages' (namespace zdsync, metric names the
/// code emits, stages that exist) and the state machine's execution time with the 45-minute
/// line.
fn check_metrics(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let emitted = emitted_metrics();
    for (metric, threshold, stage) in [
        ("errors", 10.0, "sync"),
        ("guard_tripped", 1.0, "sync"),
        ("salesforce_api_used_percent", 80.0, "gather-accounts"),
    ] {
        let alarms: Vec<(&str, &Value)> = d
            .resources_of_type("AWS::CloudWatch::Alarm")
            .filter(|(_, a)| a["Properties"]["Namespace"] == zdsync::metrics::NAMESPACE)
            .filter(|(_, a)| a["Properties"]["MetricName"] == metric)
            .collect();
        let [(id, alarm)] = alarms.as_slice() else {
            problems.push(format!(
                "{} alarms on zdsync {metric}, not one",
                alarms.len()
            ));
            continue;
        };
        let p = &alarm["Properties"];
        if !emitted.contains(metric) {
            problems.push(format!("{id}: the stages emit no metric {metric}"));
        }
        let on_stage = as_list(&p["Dimensions"])
            .iter()
            .any(|dim| dim["Name"] == "Stage" && dim["Value"] == stage);
        if !on_stage || p["Threshold"].as_f64() != Some(threshold) {
            problems.push(format!(
                "{id}: not Stage={stage} with threshold {threshold}"
            ));
        }
    }
    let dashboards: Vec<(&str, &Value)> =
        d.resources_of_type("AWS::CloudWatch::Dashboard").collect();
    let [(id, dashboard)] = dashboards.as_slice() else {
        problems.push(format!("{} dashboards, not one", dashboards.len()));
        return problems;
    };
    let Some(body) = sub(&dashboard["Properties"]["DashboardBody"]) else {
        problems.push(format!("{id}: the body is not a Fn::Sub string"));
        return problems;
    };
    let body: Value = match serde_json::from_str(body) {
        Ok(body) => body,
        Err(e) => {
            problems.push(format!("{id}: the body is not JSON: {e}"));
            return problems;
        }
    };
    let stages: BTreeSet<&str> = Stage::ALL.iter().map(|s| s.function_name()).collect();
    let mut execution_time_line = false;
    for widget in as_list(&body["widgets"]) {
        for metric in as_list(&widget["properties"]["metrics"]) {
            let parts = as_list(&metric);
            let text = |i: usize| parts.get(i).and_then(Value::as_str).unwrap_or_default();
            match text(0) {
                "zdsync" => {
                    if !emitted.contains(text(1)) {
                        problems.push(format!("{id}: graphs {}, which no stage emits", text(1)));
                    }
                    if text(2) != "Stage" || !stages.contains(text(3)) {
                        problems.push(format!("{id}: {} of no stage ({})", text(1), text(3)));
                    }
                }
                "AWS/States" if text(1) == "ExecutionTime" => {
                    execution_time_line =
                        as_list(&widget["properties"]["annotations"]["horizontal"])
                            .iter()
                            .any(|a| a["value"].as_f64() == Some(EXECUTION_TIME_ALARM_MS));
                }
                other => problems.push(format!("{id}: an unexpected metric namespace {other}")),
            }
        }
    }
    if !execution_time_line {
        problems.push(format!(
            "{id}: no execution-time graph with the 45-minute line"
        ));
    }
    problems
}

#[test]
fn alarms_and_the_dashboard_watch_the_metrics_the_stages_emit() {
    assert_no_problems("metrics", check_metrics(&Deployment::load()));
}

// --- the checks catch drift ------------------------------------------------------------------

/// Applies `edit` to a copy of the real files and returns what `check` then reports.
fn after(edit: impl FnOnce(&mut Deployment), check: impl Fn(&Deployment) -> Vec<String>) -> String {
    let mut d = Deployment::load();
    assert!(check(&d).is_empty(), "the real files pass before the edit");
    edit(&mut d);
    let problems = check(&d);
    assert!(!problems.is_empty(), "the edit went unnoticed");
    problems.join("\n")
}

fn function_props<'a>(d: &'a mut Deployment, id: &str) -> &'a mut Value {
    &mut d.template["Resources"][id]["Properties"]
}

fn role_statements_mut<'a>(d: &'a mut Deployment, role: &str) -> &'a mut Vec<Value> {
    d.template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .expect("inline statements")
}

#[test]
fn drift_in_substitutions_is_caught() {
    let removed = after(
        |d| {
            let (id, _) = d.state_machine();
            let id = id.to_owned();
            d.template["Resources"][id]["Properties"]["DefinitionSubstitutions"]
                .as_object_mut()
                .unwrap()
                .remove("SyncFunctionArn");
        },
        check_substitutions,
    );
    assert!(removed.contains("${SyncFunctionArn}"), "{removed}");

    let added = after(
        |d| {
            d.asl_text = d
                .asl_text
                .replace("${SummarizeFunctionArn}", "${ReportFunctionArn}")
        },
        check_substitutions,
    );
    assert!(added.contains("${ReportFunctionArn}"), "{added}");
    assert!(
        added.contains("SummarizeFunctionArn is not used"),
        "{added}"
    );

    let swapped = after(
        |d| {
            let (id, _) = d.state_machine();
            let id = id.to_owned();
            d.template["Resources"][id]["Properties"]["DefinitionSubstitutions"]["CompareFunctionArn"] =
                json!({"Fn::GetAtt": ["ProcessFunction", "Arn"]});
        },
        check_substitutions,
    );
    assert!(swapped.contains("holds the process function"), "{swapped}");

    let unused = after(
        |d| {
            d.asl_text = d
                .asl_text
                .replace("${GuardFunctionArn}", "${GatherAccountsFunctionArn}")
        },
        check_every_function_is_used,
    );
    assert!(unused.contains("GuardFunction"), "{unused}");
}

#[test]
fn drift_in_binaries_is_caught() {
    let binaries = workspace_function_binaries();
    let renamed = after(
        |d| {
            d.template["Resources"]["SyncFunction"]["Metadata"]["BuildProperties"]["Binary"] =
                json!("zdsync-synch");
        },
        |d| check_builds(d, &binaries),
    );
    assert!(
        renamed.contains("zdsync-synch is not a package"),
        "{renamed}"
    );
    assert!(
        renamed.contains("no template function deploys it"),
        "{renamed}"
    );

    let x86 = after(
        |d| function_props(d, "GuardFunction")["Architectures"] = json!(["x86_64"]),
        |d| check_builds(d, &binaries),
    );
    assert!(x86.contains("Architectures"), "{x86}");
}

#[test]
fn drift_in_environment_is_caught() {
    let typo = after(
        |d| {
            d.template["Globals"]["Function"]["Environment"]["Variables"]["ZDSYNC_ZENDESK_GLOBAL_URLL"] =
                json!("https://example.zendesk.com");
        },
        check_environment,
    );
    assert!(
        typo.contains("ZDSYNC_ZENDESK_GLOBAL_URLL is not a zdsync setting"),
        "{typo}"
    );

    let plaintext = after(
        |d| {
            function_props(d, "SyncFunction")["Environment"]["Variables"]["ZDSYNC_ZENDESK_GLOBAL_TOKEN"] =
                json!("hunter2");
        },
        check_environment,
    );
    assert!(
        plaintext.contains("belongs in Secrets Manager"),
        "{plaintext}"
    );
}

#[test]
fn drift_in_secrets_is_caught() {
    let extra = after(
        |d| {
            function_props(d, "CompareFunction")["Environment"] = json!({"Variables": {"ZDSYNC_SECRETS_SALESFORCE_ARN": {"Ref": "SalesforceSecret"}}});
        },
        check_secrets,
    );
    assert!(extra.contains("reads no Salesforce secret"), "{extra}");

    let crossed = after(
        |d| {
            function_props(d, "GatherOrgsFunction")["Environment"]["Variables"]["ZDSYNC_SECRETS_ZENDESK_GLOBAL_ARN"] =
                json!({"Ref": "ZendeskUsgovSecret"});
        },
        check_secrets,
    );
    assert!(
        crossed.contains("not a Ref to the Zendesk(Global) secret"),
        "{crossed}"
    );

    let granted = after(
        |d| {
            role_statements_mut(d, "CompareRole").push(json!({
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "SlackSecret"},
            }))
        },
        check_secrets,
    );
    assert!(
        granted.contains("which the compare stage does not need"),
        "{granted}"
    );
}

#[test]
fn drift_in_execution_listing_is_caught() {
    let compare = after(
        |d| {
            role_statements_mut(d, "CompareRole").push(json!({
                "Effect": "Allow",
                "Action": ["states:List*"],
                "Resource": "*",
            }))
        },
        check_list_executions,
    );
    assert!(compare.contains("only the guard and the sync"), "{compare}");
    let sync_everywhere = after(
        |d| {
            role_statements_mut(d, "SyncRole").push(json!({
                "Effect": "Allow",
                "Action": ["states:List*"],
                "Resource": "*",
            }))
        },
        check_list_executions,
    );
    assert!(
        sync_everywhere.contains("not on this state machine"),
        "{sync_everywhere}"
    );

    let renamed = after(
        |d| {
            let (id, _) = d.state_machine();
            let id = id.to_owned();
            d.template["Resources"][id]["Properties"]["Name"] =
                json!({"Fn::Sub": "${EnvironmentName}-zdsync-sync"});
        },
        check_list_executions,
    );
    assert!(renamed.contains("not on this state machine"), "{renamed}");
}

#[test]
fn drift_in_artifact_access_is_caught() {
    let whole_bucket = after(
        |d| {
            for s in role_statements_mut(d, "CompareRole") {
                if s["Sid"] == "ReadWriteArtifacts" {
                    s["Resource"] = json!({"Fn::Sub": "${ArtifactBucket.Arn}/*"});
                }
            }
        },
        check_s3_access,
    );
    assert!(whole_bucket.contains("outside runs/*"), "{whole_bucket}");

    let pointer_elsewhere = after(
        |d| {
            role_statements_mut(d, "CompareRole").push(json!({
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": {"Fn::Sub": "${ArtifactBucket.Arn}/latest_run.json"},
            }))
        },
        check_s3_access,
    );
    assert!(
        pointer_elsewhere.contains("CompareFunction")
            && pointer_elsewhere.contains("outside runs/*"),
        "only summarize writes the pointer: {pointer_elsewhere}"
    );
    let no_pointer = after(
        |d| role_statements_mut(d, "SummarizeRole").retain(|s| s["Sid"] != "WriteLatestRunPointer"),
        check_s3_access,
    );
    assert!(
        no_pointer.contains("may not s3:PutObject latest_run.json"),
        "{no_pointer}"
    );

    let no_list = after(
        |d| {
            role_statements_mut(d, "SyncRole").retain(|s| s["Sid"] != "MissingArtifactsAreNotFound")
        },
        check_s3_access,
    );
    assert!(no_list.contains("reads as AccessDenied"), "{no_list}");

    let no_blobs = after(
        |d| role_statements_mut(d, "GatherAccountsRole").retain(|s| s["Sid"] != "ArtifactBlobs"),
        check_s3_access,
    );
    assert!(
        no_blobs.contains("GatherAccountsFunction") && no_blobs.contains("big artifacts are blobs"),
        "{no_blobs}"
    );
    let read_only_blobs = after(
        |d| {
            for s in role_statements_mut(d, "SummarizeRole") {
                if s["Sid"] == "ArtifactBlobs" {
                    s["Action"] = json!("s3:GetObject");
                }
            }
        },
        check_s3_access,
    );
    assert!(
        read_only_blobs.contains("SummarizeFunction"),
        "{read_only_blobs}"
    );
    let no_blob_list = after(
        |d| role_statements_mut(d, "CompareRole").retain(|s| s["Sid"] != "MissingBlobsAreNotFound"),
        check_s3_access,
    );
    assert!(
        no_blob_list.contains("absent blob reads as AccessDenied"),
        "{no_blob_list}"
    );
    let guard_blobs = after(
        |d| {
            role_statements_mut(d, "GuardRole").push(json!({
                "Sid": "ArtifactBlobs",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": {"Fn::Sub": "${ArtifactBucket.Arn}/blobs/*"},
            }))
        },
        check_s3_access,
    );
    assert!(guard_blobs.contains("needs no S3 access"), "{guard_blobs}");
}

#[test]
fn drift_in_schedule_and_alarms_is_caught() {
    let daily = after(
        |d| {
            let (id, _) = d.state_machine();
            let id = id.to_owned();
            d.template["Resources"][id]["Properties"]["Events"]["Scheduled"]["Properties"]["Schedule"] =
                json!("cron(0 3 * * ? *)");
        },
        check_schedule,
    );
    assert!(
        daily.contains("not a Ref to a schedule parameter"),
        "{daily}"
    );
    let daily_default = after(
        |d| d.template["Parameters"]["ScheduleExpression"]["Default"] = json!("cron(0 3 * * ? *)"),
        check_schedule,
    );
    assert!(
        daily_default.contains("not cron(0 * * * ? *)"),
        "{daily_default}"
    );
    let every_minute = after(
        |d| {
            d.template["Parameters"]["ScheduleExpression"]["AllowedValues"] =
                json!(["cron(0 * * * ? *)", "rate(1 minute)"])
        },
        check_schedule,
    );
    assert!(
        every_minute.contains("not hourly or every 5 to 59 minutes"),
        "{every_minute}"
    );

    let event_input = after(
        |d| {
            let (id, _) = d.state_machine();
            let id = id.to_owned();
            d.template["Resources"][id]["Properties"]["Events"]["Scheduled"]["Properties"]
                .as_object_mut()
                .unwrap()
                .remove("Input");
        },
        check_schedule,
    );
    assert!(
        event_input.contains("not execution input the guard accepts"),
        "{event_input}"
    );

    let slow = after(
        |d| {
            d.template["Resources"]["ExecutionTimeAlarm"]["Properties"]["Threshold"] =
                json!(3_000_000)
        },
        check_alarms,
    );
    assert!(slow.contains("GreaterThanThreshold 2700000"), "{slow}");

    let timeout = after(
        |d| {
            d.asl_text = d
                .asl_text
                .replace("\"TimeoutSeconds\": 3000", "\"TimeoutSeconds\": 3600")
        },
        check_state_machine,
    );
    assert!(timeout.contains("TimeoutSeconds is 3600"), "{timeout}");
}
