//! The Helm chart in `helm/mp-gateway`: `helm lint`, then `helm template` with
//! value variations, asserting on the rendered objects; and the container
//! image and the binary agree with what the chart renders.
//!
//! Needs a helm v3 binary: `scripts/install-dev-tools` puts one in `.tools/bin`.
//! Without it these tests fail (they never pass silently).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use serde::Deserialize;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RELEASE: &str = "gw";
/// The objects' name for release `gw`.
const NAME: &str = "gw-mp-gateway";

const SANDBOX: &[&str] = &["config.sandbox=true"];

/// A production-like release: real MP, every secret, external Redis, three replicas.
const PRODUCTION: &[&str] = &[
    "config.mpBaseUrl=https://lk-api-v2.linksfield.net",
    "secrets.mpAccessKey=SG00000010",
    "secrets.mpSecretKey=s3cret-key",
    "secrets.callbackToken=callback-t0ken",
    "secrets.grpcAuthTokens={caller-one,caller-two}",
    "redis.url=redis://:redis-pw@redis.example:6379/0",
    "replicaCount=3",
];

/// The secret variables of DESIGN.md section 4.
const SECRET_VARIABLES: &[&str] = &[
    "MP_ACCESS_KEY",
    "MP_SECRET_KEY",
    "CALLBACK_TOKEN",
    "GRPC_AUTH_TOKENS",
    "REDIS_URL",
];

/// The plain variables of DESIGN.md section 4 (MP_SANDBOX aside), plus
/// MP_TIME_ZONE and PRODUCT_CACHE_MAX_STALE_SECS, which the gateway added.
const PLAIN_VARIABLES: &[&str] = &[
    "MP_BASE_URL",
    "GRPC_ADDR",
    "HTTP_ADDR",
    "PRODUCT_CACHE_TTL_SECS",
    "PRODUCT_CACHE_MAX_STALE_SECS",
    "PUBLIC_CALLBACK_URL",
    "GRPC_TLS_CERT",
    "GRPC_TLS_KEY",
    "GRPC_TLS_CLIENT_CA",
    "MP_MAX_CONCURRENCY",
    "MP_RATE_LIMIT_PER_SEC",
    "GRPC_CONCURRENCY_LIMIT_PER_CONNECTION",
    "MP_TIMEOUT_MS",
    "IDEMPOTENCY_TTL_SECS",
    "SHUTDOWN_GRACE_SECS",
    "LOG_FORMAT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "RUST_LOG",
    "MP_TIME_ZONE",
    "REDIS_KEY_PREFIX",
    "ALARM_RETENTION",
    "ALARM_DEDUP_WINDOW_SECS",
    "ALARM_SUBSCRIBER_BUFFER",
    "ALARM_MAX_DELIVERY_ATTEMPTS",
    "GRPC_AUTH",
    "METRICS_ADDR",
    "HTTP_MAX_CONNECTIONS",
    "ACCESS_LOG",
    "REDIS_MIN_REPLICAS_ACK",
    "REDIS_REPLICA_ACK_TIMEOUT_MS",
];

/// The variables of an external Redis Sentinel or Cluster, set only when
/// `redis.sentinel` or `redis.cluster` (and `redis.passwordSecret`) are.
const REDIS_TOPOLOGY_VARIABLES: &[&str] = &[
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_CLUSTER_NODES",
    "REDIS_PASSWORD",
];

/// A production release on an external Redis Sentinel whose passwords are in `redis-passwords`.
const ON_SENTINEL: &[&str] = &[
    "config.mpBaseUrl=https://lk-api-v2.linksfield.net",
    "secrets.mpAccessKey=SG00000010",
    "secrets.mpSecretKey=s3cret-key",
    "redis.sentinel.addresses={sentinel-0.redis:26379,sentinel-1.redis:26379,sentinel-2.redis:26379}",
    "redis.sentinel.masterName=mymaster",
    "redis.passwordSecret.name=redis-passwords",
    "redis.passwordSecret.passwordKey=redis-password",
    "redis.passwordSecret.sentinelPasswordKey=sentinel-password",
    "config.redisMinReplicasAck=1",
    "replicaCount=3",
];

/// Values that make the chart set every variable of the contract.
const EVERY_SETTING: &[&str] = &[
    "config.publicCallbackUrl=https://gw.example.com/mp/alarm-callback",
    "config.mpRateLimitPerSec=20",
    "config.otelExporterOtlpEndpoint=http://otel-collector:4317",
    "tls.enabled=true",
    "tls.secretName=gw-tls",
    "tls.clientCa.enabled=true",
    "ports.metrics=9090",
];

/// helm v3: `.tools/bin/helm` (from scripts/install-dev-tools), else the first on PATH.
fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let installed = Path::new(ROOT).join(".tools/bin/helm");
        let on_path = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|dir| dir.join("helm"));
        let helm = std::iter::once(installed)
            .chain(on_path)
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "no helm (neither .tools/bin/helm nor on PATH): run scripts/install-dev-tools"
                )
            });
        let version = Command::new(&helm)
            .args(["version", "--template", "{{.Version}}"])
            .output()
            .unwrap_or_else(|e| {
                panic!("{helm:?} does not run ({e}): run scripts/install-dev-tools")
            });
        let version = String::from_utf8_lossy(&version.stdout).into_owned();
        assert!(
            version.starts_with("v3."),
            "{helm:?} is helm {version:?}, the chart needs helm v3: run scripts/install-dev-tools"
        );
        helm
    })
}

fn helm_command(subcommand: &str, sets: &[&str]) -> Command {
    helm_command_with(subcommand, "--set", sets)
}

/// `flag` is `--set`, or `--set-json` for numbers typed as in a values file.
/// An entry starting with `--` is a helm flag of its own (`--kube-version=1.29.0`).
fn helm_command_with(subcommand: &str, flag: &str, sets: &[&str]) -> Command {
    let mut command = Command::new(helm());
    command.arg(subcommand);
    if subcommand == "template" {
        command.arg(RELEASE);
    }
    command
        .arg(Path::new(ROOT).join("helm/mp-gateway"))
        .args(["--namespace", "esim"]);
    for set in sets {
        if set.starts_with("--") {
            command.arg(set);
        } else {
            command.args([flag, set]);
        }
    }
    command
}

fn run(mut command: Command) -> std::process::Output {
    command.stdin(Stdio::null()).output().expect("helm runs")
}

/// `helm template` with these `--set` values; panics with helm's message if it fails.
fn render(sets: &[&str]) -> Rendered {
    render_with("--set", sets)
}

fn render_with(flag: &str, sets: &[&str]) -> Rendered {
    let yaml = template(flag, sets);
    let objects = serde_norway::Deserializer::from_str(&yaml)
        .map(|doc| Value::deserialize(doc).expect("helm template prints valid YAML"))
        .filter(|object| !object.is_null())
        .collect();
    Rendered(objects)
}

/// The YAML `helm template` prints.
fn template(flag: &str, sets: &[&str]) -> String {
    let out = run(helm_command_with("template", flag, sets));
    assert!(
        out.status.success(),
        "helm template {sets:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("helm prints UTF-8")
}

/// `helm template` that must fail; returns helm's error output.
fn render_error(sets: &[&str]) -> String {
    let out = run(helm_command("template", sets));
    assert!(!out.status.success(), "helm template {sets:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn with(base: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    base.iter().chain(more).copied().collect()
}

/// The objects of one `helm template`.
struct Rendered(Vec<Value>);

impl Rendered {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.0.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn has(&self, kind: &str) -> bool {
        !self.all(kind).is_empty()
    }

    fn named(&self, kind: &str, name: &str) -> &Value {
        self.0
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}; rendered: {:?}", self.kinds()))
    }

    fn kinds(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
            .collect()
    }

    fn deployment(&self) -> &Value {
        self.named("Deployment", NAME)
    }

    fn pod(&self) -> &Value {
        &self.deployment()["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        &self.pod()["containers"][0]
    }

    /// The gateway ConfigMap's data.
    fn config(&self) -> &Value {
        &self.named("ConfigMap", NAME)["data"]
    }

    /// The container's `env` entry for `name`.
    fn env(&self, name: &str) -> Option<&Value> {
        self.container()["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name)
    }

    /// The Secret a secret variable comes from, as (secret name, key).
    fn secret_ref(&self, variable: &str) -> (String, String) {
        let entry = self
            .env(variable)
            .unwrap_or_else(|| panic!("no env entry for {variable}"));
        let reference = &entry["valueFrom"]["secretKeyRef"];
        (str_of(&reference["name"]), str_of(&reference["key"]))
    }

    /// A chart-created Secret's entries, decoded.
    fn secret_data(&self, name: &str) -> Vec<(String, String)> {
        let data = self.named("Secret", name)["data"]
            .as_object()
            .expect("the Secret has data");
        data.iter()
            .map(|(key, value)| {
                let bytes = BASE64.decode(str_of(value)).expect("Secret data is base64");
                (key.clone(), String::from_utf8(bytes).expect("UTF-8 secret"))
            })
            .collect()
    }

    fn pod_annotation(&self, key: &str) -> String {
        str_of(&self.deployment()["spec"]["template"]["metadata"]["annotations"][key])
    }
}

fn str_of(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

#[test]
fn helm_lint_passes_for_sandbox_production_and_every_option() {
    let everything = with(
        PRODUCTION,
        &[
            "autoscaling.enabled=true",
            "podDisruptionBudget.enabled=true",
            "serviceMonitor.enabled=true",
            "networkPolicy.enabled=true",
            "networkPolicy.egress.restrict=true",
            "ingress.enabled=true",
            "ingress.host=gw.example.com",
            "httpRoute.enabled=true",
            "httpRoute.parentRefs[0].name=public",
            "service.headless=true",
        ],
    );
    for sets in [SANDBOX, PRODUCTION, &everything, ON_SENTINEL] {
        let out = run(helm_command("lint", sets));
        assert!(
            out.status.success(),
            "helm lint {sets:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn helm_lint_fails_on_values_the_schema_rejects() {
    let out = run(helm_command("lint", &["config.logFormat=xml"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("config.logFormat"));
}

#[test]
fn rendered_objects_are_valid_for_kubernetes_1_30_with_no_unknown_fields() {
    let everything = with(
        PRODUCTION,
        &[
            "autoscaling.enabled=true",
            "autoscaling.targetMemoryUtilizationPercentage=80",
            "podDisruptionBudget.enabled=true",
            "podDisruptionBudget.minAvailable=50%",
            "networkPolicy.enabled=true",
            "networkPolicy.egress.restrict=true",
            "networkPolicy.grpcFrom[0].podSelector.matchLabels.app=shop",
            "ingress.enabled=true",
            "ingress.host=gw.example.com",
            "service.headless=true",
            "tls.enabled=true",
            "tls.secretName=gw-tls",
            "tls.clientCa.enabled=true",
        ],
    );
    let trial = with(
        SANDBOX,
        &["redis.internal.enabled=true", "networkPolicy.enabled=true"],
    );
    let existing = [
        "config.mpBaseUrl=https://lk-api-v2.linksfield.net",
        "secrets.existingSecret=mp-credentials",
        "replicaCount=2",
    ];
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    for sets in [SANDBOX, &everything, &trial, &existing] {
        let yaml = template("--set", sets);
        // The chart's floor; ServiceMonitor and HTTPRoute (CRDs) are only warned about.
        let mut validate = Command::new(&python)
            .args([
                "-m",
                "kubernetes_validate",
                "--strict",
                "--quiet",
                "--no-warn",
            ])
            .args(["--kubernetes-version", "1.30.0", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{python} does not run ({e})"));
        validate
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let out = validate.wait_with_output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !report.contains("No module named kubernetes_validate"),
            "kubernetes-validate is missing: run scripts/install-dev-tools"
        );
        assert!(out.status.success(), "{sets:?}:\n{report}");
    }
}

#[test]
fn the_container_serves_grpc_on_50051_and_http_on_8080_behind_the_service() {
    let chart = render(SANDBOX);
    let ports = chart.container()["ports"].as_array().expect("ports");
    let port = |name: &str| ports.iter().find(|p| p["name"] == name).expect(name);
    assert_eq!(port("grpc")["containerPort"], 50051);
    assert_eq!(port("http")["containerPort"], 8080);
    assert_eq!(chart.config()["GRPC_ADDR"], "0.0.0.0:50051");
    assert_eq!(chart.config()["HTTP_ADDR"], "0.0.0.0:8080");

    let service = chart.named("Service", NAME);
    let service_ports = service["spec"]["ports"].as_array().expect("service ports");
    for (name, number) in [("grpc", 50051), ("http", 8080)] {
        let p = service_ports
            .iter()
            .find(|p| p["name"] == name)
            .expect(name);
        assert_eq!(p["port"], number);
        assert_eq!(p["targetPort"], name);
    }
    assert_eq!(
        service["spec"]["selector"],
        chart.deployment()["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn probes_use_the_grpc_health_service_on_the_grpc_port_by_default() {
    let chart = render(SANDBOX);
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let probe = &chart.container()[probe];
        assert_eq!(probe["grpc"]["port"], 50051, "{probe}");
        assert!(probe.get("httpGet").is_none(), "{probe}");
    }
}

#[test]
fn probes_use_healthz_and_readyz_when_grpc_serves_tls_or_when_asked() {
    let tls = with(SANDBOX, &["tls.enabled=true", "tls.secretName=gw-tls"]);
    let http = with(SANDBOX, &["probes.type=http"]);
    for sets in [tls, http] {
        let chart = render(&sets);
        let container = chart.container();
        for (probe, path) in [
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", "/healthz"),
        ] {
            assert_eq!(container[probe]["httpGet"]["path"], path, "{sets:?}");
            assert_eq!(container[probe]["httpGet"]["port"], "http", "{sets:?}");
            assert!(container[probe].get("grpc").is_none(), "{sets:?}");
        }
    }
    let error = render_error(&with(
        SANDBOX,
        &[
            "tls.enabled=true",
            "tls.secretName=gw-tls",
            "probes.type=grpc",
        ],
    ));
    assert!(error.contains("probes.type=grpc"), "{error}");
}

#[test]
fn grpc_tls_files_come_from_a_mounted_secret() {
    let chart = render(&with(SANDBOX, EVERY_SETTING));
    let config = chart.config();
    assert_eq!(config["GRPC_TLS_CERT"], "/etc/mp-gateway/tls/tls.crt");
    assert_eq!(config["GRPC_TLS_KEY"], "/etc/mp-gateway/tls/tls.key");
    assert_eq!(
        config["GRPC_TLS_CLIENT_CA"],
        "/etc/mp-gateway/tls/client-ca.crt"
    );
    let mount = chart.container()["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tls")
        .expect("a tls mount");
    assert_eq!(mount["mountPath"], "/etc/mp-gateway/tls");
    assert_eq!(mount["readOnly"], true);
    let volume = chart.pod()["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "tls")
        .expect("a tls volume");
    let sources = volume["projected"]["sources"].as_array().unwrap();
    assert!(sources.iter().all(|s| s["secret"]["name"] == "gw-tls"));
    let paths: Vec<&Value> = sources
        .iter()
        .flat_map(|s| s["secret"]["items"].as_array().unwrap())
        .map(|item| &item["path"])
        .collect();
    assert_eq!(paths, ["tls.crt", "tls.key", "client-ca.crt"]);

    let plaintext = render(SANDBOX);
    assert!(plaintext.config().get("GRPC_TLS_CERT").is_none());
}

#[test]
fn the_container_runs_as_non_root_with_a_read_only_root_and_no_privilege_escalation() {
    let chart = render(SANDBOX);
    let container = &chart.container()["securityContext"];
    assert_eq!(container["runAsNonRoot"], true);
    assert_eq!(container["readOnlyRootFilesystem"], true);
    assert_eq!(container["allowPrivilegeEscalation"], false);
    assert_eq!(container["capabilities"]["drop"][0], "ALL");
    let pod = &chart.pod()["securityContext"];
    assert_eq!(pod["runAsNonRoot"], true);
    assert_eq!(pod["runAsUser"], 65532);
    assert_eq!(chart.pod()["automountServiceAccountToken"], false);
}

#[test]
fn mp_keys_tokens_and_the_redis_url_come_from_the_chart_secret_and_never_from_the_configmap() {
    let chart = render(PRODUCTION);
    for variable in SECRET_VARIABLES {
        assert_eq!(
            chart.secret_ref(variable),
            (NAME.to_owned(), (*variable).to_owned()),
            "{variable}"
        );
        assert!(chart.config().get(*variable).is_none(), "{variable}");
    }
    let data = chart.secret_data(NAME);
    let value = |key: &str| &data.iter().find(|(k, _)| k == key).expect(key).1;
    assert_eq!(value("MP_ACCESS_KEY"), "SG00000010");
    assert_eq!(value("MP_SECRET_KEY"), "s3cret-key");
    assert_eq!(value("CALLBACK_TOKEN"), "callback-t0ken");
    assert_eq!(value("GRPC_AUTH_TOKENS"), "caller-one,caller-two");
    assert_eq!(value("REDIS_URL"), "redis://:redis-pw@redis.example:6379/0");
    let config = serde_json::to_string(chart.config()).unwrap();
    for secret in ["s3cret-key", "callback-t0ken", "caller-one", "redis-pw"] {
        assert!(
            !config.contains(secret),
            "{secret} leaked into the ConfigMap"
        );
    }
}

#[test]
fn unset_secrets_are_neither_stored_nor_referenced() {
    let chart = render(SANDBOX);
    assert!(!chart.has("Secret"), "{:?}", chart.kinds());
    for variable in SECRET_VARIABLES {
        assert!(chart.env(variable).is_none(), "{variable}");
    }
}

#[test]
fn an_existing_secret_is_referenced_and_none_is_created() {
    let chart = render(&[
        "config.mpBaseUrl=https://lk-api-v2.linksfield.net",
        "secrets.existingSecret=mp-credentials",
        "secrets.existingSecretKeys.mpSecretKey=secret-key",
        "replicaCount=2",
    ]);
    assert!(!chart.has("Secret"), "{:?}", chart.kinds());
    assert_eq!(
        chart.secret_ref("MP_SECRET_KEY"),
        ("mp-credentials".to_owned(), "secret-key".to_owned())
    );
    for variable in SECRET_VARIABLES {
        let reference = &chart.env(variable).expect(variable)["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], "mp-credentials", "{variable}");
        // The MP keys must be there; the rest may be absent from the Secret.
        let required = variable.starts_with("MP_");
        assert_eq!(reference["optional"], !required, "{variable}");
    }

    let error = render_error(&[
        "config.mpBaseUrl=https://lk-api-v2.linksfield.net",
        "secrets.existingSecret=mp-credentials",
        "secrets.mpSecretKey=also-here",
    ]);
    assert!(error.contains("secrets.existingSecret is set"), "{error}");
}

#[test]
fn the_chart_sets_every_variable_of_the_configuration_contract() {
    let chart = render(&with(PRODUCTION, EVERY_SETTING));
    let config = chart.config();
    for variable in PLAIN_VARIABLES {
        assert!(
            config.get(*variable).is_some(),
            "{variable} not in the ConfigMap"
        );
    }
    for variable in SECRET_VARIABLES {
        chart.secret_ref(variable);
    }
    assert!(config.get("MP_SANDBOX").is_none());
    assert_eq!(render(SANDBOX).config()["MP_SANDBOX"], "true");
    // Defaults as DESIGN.md section 4 states them.
    for (variable, default) in [
        ("PRODUCT_CACHE_TTL_SECS", "300"),
        ("PRODUCT_CACHE_MAX_STALE_SECS", "3600"),
        ("MP_MAX_CONCURRENCY", "32"),
        ("GRPC_CONCURRENCY_LIMIT_PER_CONNECTION", "256"),
        ("MP_TIMEOUT_MS", "10000"),
        ("IDEMPOTENCY_TTL_SECS", "86400"),
        ("SHUTDOWN_GRACE_SECS", "8"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
        ("MP_TIME_ZONE", "+08:00"),
        ("REDIS_KEY_PREFIX", "mp-gateway"),
        ("ALARM_RETENTION", "100000"),
        ("ALARM_DEDUP_WINDOW_SECS", "600"),
        ("ALARM_SUBSCRIBER_BUFFER", "1024"),
        ("REDIS_MIN_REPLICAS_ACK", "0"),
        ("REDIS_REPLICA_ACK_TIMEOUT_MS", "1000"),
        ("ALARM_MAX_DELIVERY_ATTEMPTS", "10"),
    ] {
        assert_eq!(config[variable], default, "{variable}");
    }
}

#[test]
fn every_variable_the_binary_reads_is_covered_by_the_chart() {
    let source = std::fs::read_to_string(Path::new(ROOT).join("src/config/settings.rs")).unwrap();
    let read_by_binary: Vec<&str> = source
        .split("env = \"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert!(
        read_by_binary.contains(&"MP_BASE_URL"),
        "{read_by_binary:?}"
    );
    for variable in read_by_binary {
        assert!(
            variable == "MP_SANDBOX"
                || PLAIN_VARIABLES.contains(&variable)
                || REDIS_TOPOLOGY_VARIABLES.contains(&variable)
                || SECRET_VARIABLES.contains(&variable),
            "src/config.rs reads {variable}, which the chart does not set"
        );
    }
}

#[test]
fn numbers_reach_the_configmap_as_plain_digits() {
    // Numbers from values files (and --set-json) are floats inside helm, which
    // prints a million as 1e+06 unless the chart formats it.
    let chart = render_with(
        "--set-json",
        &[
            "config.sandbox=true",
            "config.mpTimeoutMs=1000000",
            "config.idempotencyTtlSecs=2592000",
            r#"config.extra={"OTEL_BSP_MAX_QUEUE_SIZE": 4096000}"#,
        ],
    );
    assert_eq!(chart.config()["MP_TIMEOUT_MS"], "1000000");
    assert_eq!(chart.config()["IDEMPOTENCY_TTL_SECS"], "2592000");
    assert_eq!(chart.config()["OTEL_BSP_MAX_QUEUE_SIZE"], "4096000");
    let by_set = render(&with(SANDBOX, &["config.mpRateLimitPerSec=1000000"]));
    assert_eq!(by_set.config()["MP_RATE_LIMIT_PER_SEC"], "1000000");
}

#[test]
fn the_public_callback_url_follows_the_ingress_unless_set() {
    let ingress = with(
        SANDBOX,
        &[
            "ingress.enabled=true",
            "ingress.host=gw.example.com",
            "ingress.tls[0].secretName=gw-public-tls",
        ],
    );
    assert_eq!(
        render(&ingress).config()["PUBLIC_CALLBACK_URL"],
        "https://gw.example.com/mp/alarm-callback"
    );
    let explicit = with(
        &ingress,
        &["config.publicCallbackUrl=https://mp-hooks.example/cb"],
    );
    assert_eq!(
        render(&explicit).config()["PUBLIC_CALLBACK_URL"],
        "https://mp-hooks.example/cb"
    );
}

#[test]
fn replicas_come_from_values_and_no_autoscaler_is_rendered_by_default() {
    let chart = render(PRODUCTION);
    assert_eq!(chart.deployment()["spec"]["replicas"], 3);
    assert!(!chart.has("HorizontalPodAutoscaler"));
    assert_eq!(render(SANDBOX).deployment()["spec"]["replicas"], 1);
}

#[test]
fn the_autoscaler_when_enabled_owns_the_replica_count() {
    let chart = render(&with(
        PRODUCTION,
        &[
            "autoscaling.enabled=true",
            "autoscaling.minReplicas=3",
            "autoscaling.maxReplicas=12",
            "autoscaling.targetMemoryUtilizationPercentage=80",
        ],
    ));
    assert!(chart.deployment()["spec"].get("replicas").is_none());
    let hpa = chart.named("HorizontalPodAutoscaler", NAME);
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], NAME);
    assert_eq!(hpa["spec"]["minReplicas"], 3);
    assert_eq!(hpa["spec"]["maxReplicas"], 12);
    let metrics: Vec<&Value> = hpa["spec"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["resource"]["name"])
        .collect();
    assert_eq!(metrics, ["cpu", "memory"]);
}

#[test]
fn optional_objects_appear_only_when_enabled() {
    let plain = render(PRODUCTION);
    for kind in [
        "PodDisruptionBudget",
        "ServiceMonitor",
        "NetworkPolicy",
        "Ingress",
        "HTTPRoute",
    ] {
        assert!(!plain.has(kind), "{kind} rendered by default");
    }
    assert_eq!(plain.all("Service").len(), 1);

    let chart = render(&with(
        PRODUCTION,
        &[
            "podDisruptionBudget.enabled=true",
            "serviceMonitor.enabled=true",
            "networkPolicy.enabled=true",
            "ingress.enabled=true",
            "ingress.host=gw.example.com",
            "httpRoute.enabled=true",
            "httpRoute.parentRefs[0].name=public",
            "service.headless=true",
        ],
    ));
    let selector = &chart.deployment()["spec"]["selector"]["matchLabels"];

    let pdb = chart.named("PodDisruptionBudget", NAME);
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], selector);

    let monitor = chart.named("ServiceMonitor", NAME);
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let service_labels = &chart.named("Service", NAME)["metadata"]["labels"];
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &service_labels[key], value,
            "ServiceMonitor selects the Service"
        );
    }
    let headless_labels = &chart.named("Service", "gw-mp-gateway-headless")["metadata"]["labels"];
    assert_ne!(
        headless_labels["app.kubernetes.io/component"],
        service_labels["app.kubernetes.io/component"],
        "the headless Service must not be scraped twice"
    );

    let policy = chart.named("NetworkPolicy", NAME);
    assert_eq!(&policy["spec"]["podSelector"]["matchLabels"], selector);
    let allowed: Vec<&Value> = policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| &rule["ports"][0]["port"])
        .collect();
    assert_eq!(allowed, ["grpc", "http"]);

    let ingress = chart.named("Ingress", NAME);
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "gw.example.com");
    let path = &rule["http"]["paths"][0];
    assert_eq!(path["path"], "/mp/alarm-callback");
    assert_eq!(path["pathType"], "Exact");
    assert_eq!(path["backend"]["service"]["name"], NAME);
    assert_eq!(path["backend"]["service"]["port"]["name"], "http");
    assert_eq!(rule["http"]["paths"].as_array().unwrap().len(), 1);

    let route = chart.named("HTTPRoute", NAME);
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "public");
    let rule = &route["spec"]["rules"][0];
    assert_eq!(rule["matches"][0]["path"]["value"], "/mp/alarm-callback");
    assert_eq!(rule["backendRefs"][0]["port"], 8080);
}

#[test]
fn the_trial_redis_appears_only_when_enabled_and_redis_url_then_points_at_it() {
    let external = render(PRODUCTION);
    assert_eq!(
        external.all("Deployment").len(),
        1,
        "{:?}",
        external.kinds()
    );

    let chart = render(&[
        "config.sandbox=true",
        "redis.internal.enabled=true",
        "networkPolicy.enabled=true",
    ]);
    let redis = chart.named("Deployment", "gw-mp-gateway-redis");
    assert_eq!(redis["spec"]["replicas"], 1);
    let service = chart.named("Service", "gw-mp-gateway-redis");
    assert_eq!(service["spec"]["ports"][0]["port"], 6379);
    assert_eq!(
        chart.env("REDIS_URL").expect("REDIS_URL")["value"],
        "redis://gw-mp-gateway-redis:6379"
    );
    assert_ne!(
        service["spec"]["selector"],
        chart.deployment()["spec"]["selector"]["matchLabels"],
        "the gateway Service must not select Redis, nor the reverse"
    );
    let only_gateway = chart.named("NetworkPolicy", "gw-mp-gateway-redis");
    assert_eq!(
        only_gateway["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
        chart.deployment()["spec"]["selector"]["matchLabels"]
    );

    let error = render_error(&with(PRODUCTION, &["redis.internal.enabled=true"]));
    assert!(error.contains("exclusive"), "{error}");
}

#[test]
fn configurations_that_would_misbehave_are_refused_with_what_to_set() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "config.mpBaseUrl"),
        (
            &["config.mpBaseUrl=https://lk-api-v2.linksfield.net"],
            "secrets.mpAccessKey",
        ),
        (
            &[
                "config.mpBaseUrl=https://lk-api-v2.linksfield.net",
                "secrets.mpAccessKey=a",
                "secrets.mpSecretKey=b",
                "replicaCount=2",
            ],
            "needs Redis",
        ),
        (
            &[
                "config.sandbox=true",
                "autoscaling.enabled=true",
                "redis.internal.enabled=true",
            ],
            "one replica",
        ),
        (
            &["config.sandbox=true", "tls.enabled=true"],
            "tls.secretName",
        ),
        (
            &["config.sandbox=true", "terminationGracePeriodSeconds=10"],
            "terminationGracePeriodSeconds",
        ),
    ];
    for (sets, named) in cases {
        let error = render_error(sets);
        assert!(error.contains(named), "{sets:?}: {error}");
    }
}

#[test]
fn the_schema_rejects_malformed_and_misspelt_values() {
    for (sets, named) in [
        (["config.logFormat=xml"], "config.logFormat"),
        (["config.mpTimeZone=Asia/Shanghai"], "config.mpTimeZone"),
        (["replicas=3"], "replicas"),
        (["probes.type=tcp"], "probes.type"),
        (
            ["config.mpBaseUrl=lk-api-v2.linksfield.net"],
            "config.mpBaseUrl",
        ),
        (["secrets.grpcAuthTokens[0]=a b"], "secrets.grpcAuthTokens"),
        (
            ["redis.sentinel.addresses[0]=sentinel-0"],
            "redis.sentinel.addresses",
        ),
        (["redis.cluster.nodes[0]=node:port"], "redis.cluster.nodes"),
        (
            ["config.redisMinReplicasAck=-1"],
            "config.redisMinReplicasAck",
        ),
    ] {
        let error = render_error(&with(SANDBOX, &sets));
        assert!(error.contains("schema"), "{sets:?}: {error}");
        assert!(error.contains(named), "{sets:?}: {error}");
    }
}

#[test]
fn pods_pause_before_sigterm_and_get_longer_than_the_gateways_own_grace() {
    let chart = render(SANDBOX);
    let sleep = &chart.container()["lifecycle"]["preStop"]["sleep"]["seconds"];
    assert_eq!(sleep, 5);
    // preStop 5 s + SHUTDOWN_GRACE_SECS 8 s, and a margin.
    assert_eq!(chart.pod()["terminationGracePeriodSeconds"], 18);

    let longer = render(&with(SANDBOX, &["config.shutdownGraceSecs=30"]));
    assert_eq!(longer.config()["SHUTDOWN_GRACE_SECS"], "30");
    assert_eq!(longer.pod()["terminationGracePeriodSeconds"], 40);

    let no_pause = render(&with(SANDBOX, &["lifecycle.preStopSleepSeconds=0"]));
    assert!(no_pause.container().get("lifecycle").is_none());

    // The sleep action needs Kubernetes 1.30; older clusters get told, or run without the pause.
    let error = render_error(&with(SANDBOX, &["--kube-version=1.29.4"]));
    assert!(error.contains("lifecycle.preStopSleepSeconds=0"), "{error}");
    render(&with(
        SANDBOX,
        &["--kube-version=1.29.4", "lifecycle.preStopSleepSeconds=0"],
    ));
}

#[test]
fn a_changed_setting_or_secret_rolls_the_pods() {
    let base = render(PRODUCTION);
    let setting = render(&with(PRODUCTION, &["config.mpTimeoutMs=5000"]));
    let secret = render(&with(PRODUCTION, &["secrets.mpSecretKey=rotated"]));
    assert_ne!(
        base.pod_annotation("checksum/config"),
        setting.pod_annotation("checksum/config")
    );
    assert_eq!(
        base.pod_annotation("checksum/secret"),
        setting.pod_annotation("checksum/secret")
    );
    assert_ne!(
        base.pod_annotation("checksum/secret"),
        secret.pod_annotation("checksum/secret")
    );
}

#[test]
fn the_image_defaults_to_the_crate_version_and_a_digest_pins_it() {
    let chart_yaml = std::fs::read_to_string(Path::new(ROOT).join("helm/mp-gateway/Chart.yaml"))
        .expect("Chart.yaml");
    let chart_yaml: Value = serde_norway::from_str(&chart_yaml).expect("Chart.yaml is YAML");
    assert_eq!(chart_yaml["appVersion"], env!("CARGO_PKG_VERSION"));
    let image = |sets: &[&str]| str_of(&render(sets).container()["image"]);
    assert_eq!(
        image(SANDBOX),
        format!("mp-gateway:{}", env!("CARGO_PKG_VERSION"))
    );
    let digest = format!("sha256:{}", "a".repeat(64));
    let by_digest = format!("image.digest={digest}");
    assert_eq!(
        image(&[
            "config.sandbox=true",
            "image.repository=registry.example/mp-gateway",
            &by_digest
        ]),
        format!("registry.example/mp-gateway@{digest}")
    );
}

#[test]
fn the_dockerfile_builds_the_binary_the_chart_runs_as_the_user_and_ports_it_expects() {
    let dockerfile =
        std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).expect("Dockerfile");
    let instruction = |name: &str| -> Vec<&str> {
        dockerfile
            .lines()
            .filter_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .collect()
    };
    assert!(dockerfile.contains(
        "cargo build --target x86_64-unknown-linux-musl --release --locked -p mp-gateway --bin mp-gateway"
    ));
    assert_eq!(instruction("ENTRYPOINT "), [r#"["/mp-gateway"]"#]);
    assert_eq!(instruction("USER "), ["65532:65532"]);
    assert_eq!(instruction("EXPOSE "), ["50051 8080"]);
    // The last stage is the image: empty but for the binary and a CA bundle,
    // all copied from the stage scripts/container-smoke replaces with a local build.
    assert_eq!(
        instruction("FROM ").last().copied(),
        Some("scratch AS runtime"),
        "the runtime stage is FROM scratch"
    );
    let runtime = dockerfile.split("\nFROM ").last().expect("a FROM line");
    let copies: Vec<&str> = runtime
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .collect();
    assert_eq!(
        copies,
        [
            "--from=build /mp-gateway /mp-gateway",
            "--from=build /ca-certificates.crt /etc/ssl/certs/ca-certificates.crt",
        ]
    );
    assert_eq!(
        instruction("ENV "),
        ["SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]
    );
    let chart = render(SANDBOX);
    assert_eq!(chart.pod()["securityContext"]["runAsUser"], 65532);
    assert_eq!(chart.pod()["securityContext"]["runAsGroup"], 65532);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The status line of `GET path`, or None while nothing answers.
fn http_status_line(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    reply.lines().next().map(str::to_owned)
}

#[test]
fn the_rendered_configmap_starts_the_real_binary() {
    let (grpc, http) = (free_port(), free_port());
    let (grpc_set, http_set) = (format!("ports.grpc={grpc}"), format!("ports.http={http}"));
    let chart = render(&[
        "config.sandbox=true",
        "config.listenHost=127.0.0.1",
        "config.shutdownGraceSecs=1",
        &grpc_set,
        &http_set,
    ]);
    let env: Vec<(String, String)> = chart
        .config()
        .as_object()
        .expect("ConfigMap data")
        .iter()
        .map(|(k, v)| (k.clone(), str_of(v)))
        .collect();
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_mp-gateway"))
        .env_clear()
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        if let Some(exit) = gateway.try_wait().expect("wait works") {
            let mut stderr = String::new();
            gateway
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .ok();
            panic!("the gateway exited ({exit}) with the chart's settings: {stderr}");
        }
        match http_status_line(http, "/readyz") {
            Some(line) if line.contains(" 200 ") => break true,
            _ if Instant::now() > deadline => break false,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    gateway.kill().expect("kill works");
    gateway.wait().expect("wait works");
    assert!(ready, "not ready within 20 s with the chart's settings");
}

#[test]
fn grpc_auth_off_is_refused_with_tokens_and_metrics_can_move_to_their_own_port() {
    let error = render_error(&[
        "config.sandbox=true",
        "config.grpcAuth=off",
        "secrets.grpcAuthTokens={t1}",
    ]);
    assert!(error.contains("config.grpcAuth is off"), "{error}");
    assert_eq!(render(SANDBOX).config()["GRPC_AUTH"], "on");
    assert!(render(SANDBOX).config().get("METRICS_ADDR").is_none());

    let chart = render(&with(SANDBOX, &["ports.metrics=9090"]));
    assert_eq!(chart.config()["METRICS_ADDR"], "0.0.0.0:9090");
}

#[test]
fn an_external_sentinel_is_named_in_the_configmap_with_passwords_from_its_secret() {
    let chart = render(ON_SENTINEL);
    let config = chart.config();
    assert_eq!(
        config["REDIS_SENTINELS"],
        "sentinel-0.redis:26379,sentinel-1.redis:26379,sentinel-2.redis:26379"
    );
    assert_eq!(config["REDIS_SENTINEL_MASTER"], "mymaster");
    assert_eq!(config["REDIS_MIN_REPLICAS_ACK"], "1");
    assert!(config.get("REDIS_CLUSTER_NODES").is_none());
    assert_eq!(
        chart.secret_ref("REDIS_PASSWORD"),
        ("redis-passwords".to_owned(), "redis-password".to_owned())
    );
    assert_eq!(
        chart.secret_ref("REDIS_SENTINEL_PASSWORD"),
        ("redis-passwords".to_owned(), "sentinel-password".to_owned())
    );
    assert!(
        chart.env("REDIS_URL").is_none(),
        "no REDIS_URL beside the sentinels"
    );
}

#[test]
fn an_external_cluster_is_named_in_the_configmap_and_an_existing_secret_adds_no_redis_url() {
    let chart = render(&[
        "config.mpBaseUrl=https://lk-api-v2.linksfield.net",
        "secrets.existingSecret=mp-credentials",
        "redis.cluster.nodes={redis-0.redis:6379,redis-1.redis:6379}",
        "redis.passwordSecret.name=redis-passwords",
        "redis.passwordSecret.passwordKey=redis-password",
        "replicaCount=2",
    ]);
    let config = chart.config();
    assert_eq!(
        config["REDIS_CLUSTER_NODES"],
        "redis-0.redis:6379,redis-1.redis:6379"
    );
    assert!(config.get("REDIS_SENTINELS").is_none());
    assert_eq!(
        chart.secret_ref("REDIS_PASSWORD"),
        ("redis-passwords".to_owned(), "redis-password".to_owned())
    );
    assert!(chart.env("REDIS_SENTINEL_PASSWORD").is_none());
    // The gateway refuses REDIS_URL beside REDIS_CLUSTER_NODES.
    assert!(chart.env("REDIS_URL").is_none());
}

#[test]
fn two_ways_to_name_redis_or_a_sentinel_without_its_master_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (&["redis.url=redis://r:6379"], "exclusive"),
        (&["redis.cluster.nodes={c:6379}"], "exclusive"),
        (&["redis.internal.enabled=true"], "exclusive"),
        (&["redis.sentinel.masterName="], "redis.sentinel.masterName"),
    ];
    for (more, named) in cases {
        let sets: Vec<&str> = ON_SENTINEL.iter().chain(more.iter()).copied().collect();
        let error = render_error(&sets);
        assert!(error.contains(named), "{more:?}: {error}");
    }
    let error = render_error(&with(
        PRODUCTION,
        &["redis.passwordSecret.name=redis-passwords"],
    ));
    assert!(error.contains("redis.passwordSecret"), "{error}");
}
