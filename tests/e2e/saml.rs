//! SAML 2.0 sign-in against a real identity provider (pysaml2, tests/saml/idp.py), driven over
//! the HTTP bindings as a browser would: cooper's redirect to the IdP, the IdP's auto-posting
//! form back to cooper's assertion consumer, the console session, and credentials that work.
//! The forged responses (wrapping, other keys, SHA-1, DOCTYPE, ...) are unit tests over fixed
//! fixtures in crates/api (`saml::tests`); here, what needs the whole flow.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cooper_core::model::Principal;
use cooper_core::names::GroupName;
use serde_json::{Value, json};

use crate::harness::{ACCOUNT_A, SamlIdp, TestEnv};
use crate::web::{Console, console_on};

const PROVIDER: &str = "corp";

/// A browser: its own cookies, redirects followed by hand.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// `&amp;` and numeric character references decoded (what an HTML attribute holds).
fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The value of attribute `name` in an HTML tag's text.
fn attribute(tag: &str, name: &str) -> Option<String> {
    for quote in ['"', '\''] {
        let needle = format!("{name}={quote}");
        if let Some(at) = tag.find(&needle) {
            let rest = &tag[at + needle.len()..];
            return rest.find(quote).map(|end| unescape(&rest[..end]));
        }
    }
    None
}

/// The IdP's auto-posting form: where it posts, and its fields.
fn posted_form(page: &str) -> (String, Vec<(String, String)>) {
    let form = page.split("<form").nth(1).expect("the IdP answers a form");
    let action = attribute(form, "action").expect("the form has an action");
    let fields = form
        .split("<input")
        .skip(1)
        .filter_map(|tag| {
            let tag = tag.split('>').next().unwrap_or_default();
            Some((
                attribute(tag, "name")?,
                attribute(tag, "value").unwrap_or_default(),
            ))
        })
        .collect();
    (action, fields)
}

/// Starts a sign-in at cooper in `browser`, has the IdP sign `login` in, and returns the form
/// the IdP would post back (not yet posted).
async fn through_the_idp(
    browser: &reqwest::Client,
    console: &Console,
    login: &str,
) -> (String, Vec<(String, String)>) {
    let start = browser
        .get(format!("{}/v1/saml/{PROVIDER}/login", console.url))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303, "{}", start.text().await.unwrap());
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let page = browser
        .get(format!("{location}&login={login}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    posted_form(&page.text().await.unwrap())
}

/// The form of a sign-in the IdP starts itself (unsolicited: it answers no request).
async fn idp_initiated(
    browser: &reqwest::Client,
    idp: &SamlIdp,
    login: &str,
) -> (String, Vec<(String, String)>) {
    let page = browser
        .get(format!(
            "{}/idp-initiated?login={login}",
            idp.sso_url.trim_end_matches("/sso")
        ))
        .send()
        .await
        .unwrap();
    posted_form(&page.text().await.unwrap())
}

async fn post(
    browser: &reqwest::Client,
    action: &str,
    fields: &[(String, String)],
    html: bool,
) -> reqwest::Response {
    browser
        .post(action)
        .header(
            "accept",
            if html {
                "text/html"
            } else {
                "application/json"
            },
        )
        .form(fields)
        .send()
        .await
        .unwrap()
}

async fn code_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}), HTTP {status}: {text:.300}"));
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// cooper (API and console on one listener) with a pysaml2 IdP as provider `corp`.
async fn with_idp(env: &TestEnv, extra: Value) -> (Console, SamlIdp) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let idp = SamlIdp::start(
        &format!("{url}/v1/saml/{PROVIDER}/metadata"),
        &format!("{url}/v1/saml/{PROVIDER}/acs"),
        "alice@example.com",
        &["eng", "ops"],
    );
    let config = idp.config(PROVIDER, extra);
    let console = console_on(listener, env, |settings| {
        settings.saml_providers = config;
        settings.public_url = Some(url.clone());
    })
    .await;
    (console, idp)
}

fn group(name: &str) -> Principal {
    Principal::Group(GroupName::parse(name).unwrap())
}

/// The value after `name=` in the credentials page's `export` lines.
fn exported(page: &str, name: &str) -> String {
    let needle = format!("export {name}=");
    let at = page
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} in the page"));
    page[at + needle.len()..]
        .split(|c: char| c.is_whitespace() || c == '<')
        .next()
        .unwrap()
        .trim_matches(['"', '\''])
        .to_owned()
}

#[tokio::test]
async fn a_person_signs_in_with_a_real_saml_idp_and_their_namespaced_group_grants_a_target() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("saml-readonly", ACCOUNT_A, 1, None).await;
    env.role_target("plain-eng", ACCOUNT_A, 1, None).await;
    env.user("alice@example.com").await;
    // The IdP's group `eng` is `corp:eng` in cooper; a directory group named `eng` is not it.
    env.group("corp:eng", &[]).await;
    env.group("eng", &[]).await;
    env.grant_target(group("corp:eng"), "saml-readonly").await;
    env.grant_target(group("eng"), "plain-eng").await;
    let (console, idp) = with_idp(&env, json!({"email_domains": ["example.com"]})).await;

    // The SP metadata names what the IdP is configured with.
    let metadata = reqwest::get(format!("{}/v1/saml/{PROVIDER}/metadata", console.url))
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    assert_eq!(
        metadata.headers()["content-type"],
        "application/samlmetadata+xml"
    );
    let metadata = metadata.text().await.unwrap();
    assert!(metadata.contains(&format!(
        r#"entityID="{}/v1/saml/{PROVIDER}/metadata""#,
        console.url
    )));
    assert!(metadata.contains(&format!(
        r#"Location="{}/v1/saml/{PROVIDER}/acs""#,
        console.url
    )));
    assert!(metadata.contains(r#"WantAssertionsSigned="true""#));

    // The console's sign-in page offers the provider.
    let signin = reqwest::get(format!("{}/signin", console.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        signin.contains(&format!(r#"href="/v1/saml/{PROVIDER}/login""#)),
        "a Sign in with {PROVIDER} button"
    );

    // The redirect carries an AuthnRequest for this ACS, deflated, and a RelayState of at most
    // 80 bytes.
    let browser = browser();
    let start = browser
        .get(format!("{}/v1/saml/{PROVIDER}/login", console.url))
        .send()
        .await
        .unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&idp.sso_url), "{location}");
    let query: Vec<(String, String)> = url_query(&location);
    let request = &query.iter().find(|(k, _)| k == "SAMLRequest").unwrap().1;
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&STANDARD.decode(request).unwrap()[..])
        .read_to_string(&mut xml)
        .unwrap();
    assert!(xml.contains(&format!(
        r#"AssertionConsumerServiceURL="{}/v1/saml/{PROVIDER}/acs""#,
        console.url
    )));
    let relay = &query.iter().find(|(k, _)| k == "RelayState").unwrap().1;
    assert!(relay.len() <= 80, "{relay}");

    // The IdP signs alice in and posts her back: a console session.
    let page = browser
        .get(format!("{location}&login=alice@example.com"))
        .send()
        .await
        .unwrap();
    let (action, fields) = posted_form(&page.text().await.unwrap());
    assert_eq!(action, format!("{}/v1/saml/{PROVIDER}/acs", console.url));
    let signed_in = post(&browser, &action, &fields, true).await;
    assert_eq!(signed_in.status(), 200);
    assert!(
        signed_in
            .text()
            .await
            .unwrap()
            .contains("alice@example.com"),
        "the page names who signed in"
    );
    let targets = browser
        .get(format!("{}/targets", console.url))
        .send()
        .await
        .unwrap();
    assert_eq!(targets.status(), 200);
    let page = targets.text().await.unwrap();
    assert!(page.contains("saml-readonly"), "the IdP group's target");
    assert!(
        !page.contains("plain-eng"),
        "an un-namespaced group's target"
    );

    // Credentials from the console, which work against STS.
    let csrf = {
        let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
        page[at..].split('"').next().unwrap().to_owned()
    };
    let issued = browser
        .post(format!("{}/credentials", console.url))
        .header("origin", &console.url)
        .form(&[("target", "saml-readonly"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 200);
    let page = issued.text().await.unwrap();
    let credentials = aws_credential_types::Credentials::new(
        exported(&page, "AWS_ACCESS_KEY_ID"),
        exported(&page, "AWS_SECRET_ACCESS_KEY"),
        Some(exported(&page, "AWS_SESSION_TOKEN")),
        None,
        "saml-test",
    );
    let sts = cooper_aws::aws_sdk_sts::Client::from_conf(
        cooper_aws::aws_sdk_sts::config::Builder::from(&env.sdk)
            .credentials_provider(credentials)
            .build(),
    );
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::111111111111:assumed-role/saml-readonly-role/alice@example.com")
    );

    // The session was audited as a SAML one.
    let created: Vec<_> = env
        .audit_items()
        .await
        .into_iter()
        .filter(|r| r["event"].as_s().is_ok_and(|e| e == "session.created"))
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["auth"].as_s().unwrap(), "saml:corp");
}

fn url_query(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

#[tokio::test]
async fn a_response_is_good_once_in_the_browser_that_asked_and_never_unsolicited() {
    let env = TestEnv::start().await;
    env.user("alice@example.com").await;
    let (console, idp) = with_idp(&env, json!({})).await;

    // Replayed: the same response, posted again by the same browser.
    let browser = browser();
    let (action, fields) = through_the_idp(&browser, &console, "alice@example.com").await;
    assert_eq!(post(&browser, &action, &fields, false).await.status(), 200);
    assert_eq!(
        code_of(post(&browser, &action, &fields, false).await).await,
        (401, "saml_replayed".into())
    );

    // Another browser: a response to a sign-in it did not start signs nobody in (login CSRF).
    let (action, fields) = through_the_idp(&browser, &console, "alice@example.com").await;
    assert_eq!(
        code_of(post(&self::browser(), &action, &fields, false).await).await,
        (401, "saml_wrong_browser".into())
    );

    // A RelayState that is not the one cooper made for this request.
    let (action, mut fields) = through_the_idp(&browser, &console, "alice@example.com").await;
    for (name, value) in &mut fields {
        if name == "RelayState" {
            value.replace_range(value.len() - 3.., "AAA");
        }
    }
    assert_eq!(
        code_of(post(&browser, &action, &fields, false).await).await,
        (401, "saml_unknown_request".into())
    );

    // IdP-initiated: refused unless the provider allows it (below, one that does).
    let (action, fields) = idp_initiated(&browser, &idp, "alice@example.com").await;
    assert_eq!(
        code_of(post(&browser, &action, &fields, false).await).await,
        (401, "saml_unsolicited".into())
    );

    // A browser sees the refusal on the sign-in page, with its code.
    let (action, fields) = through_the_idp(&browser, &console, "alice@example.com").await;
    let other = self::browser();
    let page = post(&other, &action, &fields, true).await;
    assert_eq!(page.status(), 401);
    assert!(page.text().await.unwrap().contains("saml_wrong_browser"));

    // Each refusal was audited, by whom the assertion named.
    let refused: Vec<String> = env
        .audit_items()
        .await
        .into_iter()
        .filter(|r| r["event"].as_s().is_ok_and(|e| e == "session.refused"))
        .map(|r| r["reason"].as_s().unwrap().clone())
        .collect();
    for code in [
        "saml_replayed",
        "saml_wrong_browser",
        "saml_unknown_request",
        "saml_unsolicited",
    ] {
        assert!(refused.iter().any(|r| r == code), "{code} in {refused:?}");
    }
}

#[tokio::test]
async fn the_directory_still_governs_people_a_saml_idp_vouches_for() {
    let env = TestEnv::start().await;
    let mut alice = cooper_core::model::User::new(
        cooper_core::names::UserName::parse("alice@example.com").unwrap(),
    );
    alice.enabled = false;
    env.put_user(&alice).await;
    let (console, _idp) = with_idp(&env, json!({})).await;
    let browser = browser();
    let (action, fields) = through_the_idp(&browser, &console, "alice@example.com").await;
    assert_eq!(
        code_of(post(&browser, &action, &fields, false).await).await,
        (403, "user_disabled".into())
    );
    // Someone the directory has no record of is signed in, as with OIDC, with only the
    // groups the IdP asserts (here none granted anything).
    let (action, fields) = through_the_idp(&browser, &console, "mallory@example.com").await;
    assert_eq!(post(&browser, &action, &fields, false).await.status(), 200);
    // An email domain the provider may not sign in.
    let (console, _idp) = with_idp(&env, json!({"email_domains": ["corp.example"]})).await;
    let (action, fields) = through_the_idp(&browser, &console, "alice@example.com").await;
    assert_eq!(
        code_of(post(&browser, &action, &fields, false).await).await,
        (401, "email_domain_not_allowed".into())
    );
}

#[tokio::test]
async fn a_deployment_without_saml_or_with_an_unsound_provider_says_so() {
    let env = TestEnv::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let console = console_on(listener, &env, |_| {}).await;
    for path in ["metadata", "login"] {
        let answer = reqwest::get(format!("{}/v1/saml/corp/{path}", console.url))
            .await
            .unwrap();
        assert_eq!(code_of(answer).await, (404, "saml_not_configured".into()));
    }
    // No certificate: a start-up error, never "accept unsigned".
    let mut settings = env.settings.clone();
    settings.public_url = Some("https://cooper.example.com".into());
    settings.saml_providers = json!([{
        "name": "corp", "entity_id": "https://idp.example.com", "sso_url": "https://idp.example.com/sso",
        "certificates": [],
    }])
    .to_string();
    let err = cooper_api::web::WebState::new(env.states.clone(), &settings, false)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_signs_in_with_saml_through_the_browser() {
    use std::io::BufRead;
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("saml-cli", ACCOUNT_A, 1, None).await;
    env.user("alice@example.com").await;
    env.group("corp:ops", &[]).await;
    env.grant_target(group("corp:ops"), "saml-cli").await;
    let (console, _idp) = with_idp(&env, json!({})).await;

    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("saml-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cooper"))
        .args([
            "login",
            "--saml",
            PROVIDER,
            "--no-browser",
            "--endpoint",
            &console.url,
        ])
        .env("COOPER_CONFIG_DIR", &dir)
        .env("COOPER_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "cooper login printed no URL"
        );
        if let Some(url) = line.trim().strip_prefix("Sign in at: ") {
            break url.to_owned();
        }
    };
    // The person's browser: cooper, the IdP, back to cooper, on to the CLI with a code.
    let browser = browser();
    let start = browser.get(&url).send().await.unwrap();
    assert_eq!(start.status(), 303);
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let page = browser
        .get(format!("{location}&login=alice@example.com"))
        .send()
        .await
        .unwrap();
    let (action, fields) = posted_form(&page.text().await.unwrap());
    let handed = post(&browser, &action, &fields, true).await;
    assert_eq!(handed.status(), 303);
    let callback = handed.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    let code = callback.split("code=").nth(1).unwrap().to_owned();
    assert!(!callback.contains("eyJ"), "no token in the URL: {callback}");
    let page = reqwest::get(&callback).await.unwrap().text().await.unwrap();
    assert!(page.contains("Signed in"));
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert!(status.success(), "{rest}");
    let session: Value =
        serde_json::from_slice(&std::fs::read(dir.join("sessions/default.json")).unwrap()).unwrap();
    assert_eq!(session["user"], "alice@example.com");
    let credentials = env
        .credentials(
            session["token"].as_str().unwrap(),
            json!({"target": "saml-cli"}),
        )
        .await;
    assert_eq!(credentials.status, 200, "{}", credentials.text);
    let _ = std::fs::remove_dir_all(&dir);

    // The code was good once; a code with the wrong verifier is burned, not retried.
    let redeem = |code: String, verifier: &'static str| {
        let url = console.url.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{url}/v1/sessions/saml"))
                .json(&json!({"code": code, "code_verifier": verifier}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        code_of(redeem(code, "whatever-verifier-the-cli-had-000000000000").await).await,
        (401, "invalid_grant".into())
    );
    let verifier = "a-verifier-of-the-tests-own-0123456789abcdefghij";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    // What the console's function writes for all this is what its IAM policy allows: one-time
    // marks (taken with DeleteItem) and the audit trail.
    let ((), calls) = env
        .moto
        .record(async {
            let start = browser
                .get(format!(
                    "{}/v1/saml/{PROVIDER}/login?cli_port=40000&code_challenge={challenge}",
                    console.url
                ))
                .send()
                .await
                .unwrap();
            let location = start.headers()["location"].to_str().unwrap().to_owned();
            let page = browser
                .get(format!("{location}&login=alice@example.com"))
                .send()
                .await
                .unwrap();
            let (action, fields) = posted_form(&page.text().await.unwrap());
            let handed = post(&browser, &action, &fields, false).await;
            let code = handed.headers()["location"]
                .to_str()
                .unwrap()
                .split("code=")
                .nth(1)
                .unwrap()
                .to_owned();
            assert_eq!(
                code_of(redeem(code.clone(), "not-the-verifier-0123456789abcdefghijklmnop").await)
                    .await,
                (401, "invalid_grant".into())
            );
            assert_eq!(
                code_of(redeem(code, verifier).await).await,
                (401, "invalid_grant".into())
            );
        })
        .await;
    let written = crate::policies::allowed(&env, "saml-signin", &calls);
    assert!(
        written.contains("ONCE#") && written.contains("audit"),
        "{written:?}"
    );
}

#[tokio::test]
async fn a_provider_may_allow_idp_initiated_sign_in() {
    let env = TestEnv::start().await;
    env.user("alice@example.com").await;
    let (console, idp) = with_idp(&env, json!({"allow_idp_initiated": true})).await;
    let browser = browser();
    let (action, fields) = idp_initiated(&browser, &idp, "alice@example.com").await;
    assert_eq!(post(&browser, &action, &fields, true).await.status(), 200);
    let targets = browser
        .get(format!("{}/targets", console.url))
        .send()
        .await
        .unwrap();
    assert_eq!(targets.status(), 200, "signed in to the console");
    // Still once only.
    assert_eq!(
        code_of(post(&browser, &action, &fields, false).await).await,
        (401, "saml_replayed".into())
    );
}
