//! The web console: its browser-security rules by plain HTTP, and its flows in a real headless
//! Chromium (tests/web/browser.py, driven by Playwright).

use std::cell::Cell;
use std::process::Command;

use cooper_api::router;
use cooper_api::state::load_all;
use cooper_api::web::{self, WebState, stand_in};
use cooper_core::model::Principal;
use cooper_core::names::UserName;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use cooper_api::settings::Settings;

use crate::harness::{ACCOUNT_A, ACCOUNT_B, OpenIdProvider, TestEnv, pyotp_code, repo_root};

/// The web console and the API on one local listener, as `cooper serve` hosts them, on the
/// wall clock (a browser's codes are the wall clock's), with the sign-in stand-in.
pub(crate) struct Console {
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

async fn console(env: &TestEnv) -> Console {
    console_with(env, |_| {}).await
}

async fn console_with(env: &TestEnv, configure: impl FnOnce(&mut Settings)) -> Console {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    console_on(listener, env, configure).await
}

/// As `console_with`, on a listener already bound (a test that must know the URL first).
pub(crate) async fn console_on(
    listener: tokio::net::TcpListener,
    env: &TestEnv,
    configure: impl FnOnce(&mut Settings),
) -> Console {
    let url = format!("http://{}", listener.local_addr().unwrap());
    let here = format!("{url}{}", stand_in::PATH);
    let mut settings = env.settings.clone();
    configure(&mut settings);
    settings.signin_endpoint = Some(here.clone());
    settings.console_login_endpoint = Some(here);
    let states = load_all(&env.app_sdk, &settings).await.unwrap();
    let pages = web::routes(WebState::new(states.clone(), &settings, true).unwrap());
    let app = router::edge_with_pages(
        router::all(states)
            .merge(pages)
            .merge(stand_in::StandIn::new(env.sdk.clone()).router()),
    );
    let server = tokio::spawn(async move {
        cooper_api::host::serve_local(listener, app, std::future::pending())
            .await
            .unwrap();
    });
    Console {
        url,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _server: server,
    }
}

/// Someone with a password and an authenticator, whose codes are each used once.
struct Person {
    name: UserName,
    password: String,
    uri: String,
    last_step: Cell<u64>,
}

fn step_now() -> u64 {
    (OffsetDateTime::now_utc().unix_timestamp() / 30) as u64
}

impl Person {
    /// A code never used before: this step's or the next (both within the server's skew),
    /// waiting for a new step when both are spent.
    fn code(&self) -> String {
        loop {
            let now = step_now();
            let next = (self.last_step.get() + 1).max(now);
            if next <= now + 1 {
                self.last_step.set(next);
                let at = OffsetDateTime::from_unix_timestamp((next * 30) as i64).unwrap();
                return pyotp_code(&self.uri, at);
            }
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    }
}

/// A user enrolled with an enrollment code and a first password, against the console's clock.
async fn person(env: &TestEnv, console: &Console, name: &str) -> Person {
    let user = env.user(name).await;
    let code = env.enrollment_code(&user).await;
    let post = |path: &str, body: Value| {
        console
            .http
            .post(format!("{}{path}", console.url))
            .bearer_auth(&code)
            .json(&body)
            .send()
    };
    let started: Value = post("/v1/totp/enrollment", json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uri = started["otpauth_uri"].as_str().unwrap().to_owned();
    let password = format!("{name} keeps a long passphrase");
    let person = Person {
        name: user,
        password,
        uri,
        last_step: Cell::new(0),
    };
    let confirmed = post(
        "/v1/totp/enrollment/confirm",
        json!({"totp": person.code(), "password": person.password}),
    )
    .await
    .unwrap();
    assert_eq!(
        confirmed.status(),
        200,
        "{}",
        confirmed.text().await.unwrap()
    );
    person
}

/// The value of `name="csrf"` in a page.
fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// `name=value` of each Set-Cookie.
fn cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect()
}

/// Signs in by the form, as a browser does; the session cookie and the session's CSRF token.
async fn sign_in(console: &Console, who: &Person) -> (String, String) {
    let page = console
        .http
        .get(format!("{}/signin", console.url))
        .send()
        .await
        .unwrap();
    let pre = cookies(&page).join("; ");
    let token = csrf_in(&page.text().await.unwrap());
    let signed = console
        .http
        .post(format!("{}/signin", console.url))
        .header("cookie", &pre)
        .form(&[
            ("csrf", token.as_str()),
            ("user", who.name.as_str()),
            ("password", who.password.as_str()),
            ("totp", who.code().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303, "{}", signed.text().await.unwrap());
    assert_eq!(signed.headers()["location"], "/targets");
    let set = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    let session = cookies(&signed).join("; ");
    let targets = console
        .http
        .get(format!("{}/targets", console.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(targets.status(), 200);
    (session, csrf_in(&targets.text().await.unwrap()))
}

/// Each audit record's actor and event.
async fn trail(env: &TestEnv) -> Vec<(String, String)> {
    let field = |r: &std::collections::HashMap<
        String,
        cooper_aws::aws_sdk_dynamodb::types::AttributeValue,
    >,
                 name: &str| {
        r.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    env.audit_items()
        .await
        .iter()
        .map(|r| (field(r, "actor"), field(r, "event")))
        .collect()
}

async fn issuances(env: &TestEnv) -> usize {
    trail(env)
        .await
        .iter()
        .filter(|(_, event)| event == "credentials.issued")
        .count()
}

#[tokio::test]
async fn a_form_without_its_csrf_token_or_from_another_site_is_refused_and_changes_nothing() {
    let env = TestEnv::start().await;
    let console = console(&env).await;
    env.account(ACCOUNT_A).await;
    env.role_target("web-readonly", ACCOUNT_A, 1, None).await;
    let alice = person(&env, &console, "alice").await;
    env.grant_target(Principal::User(alice.name.clone()), "web-readonly")
        .await;
    let (session, csrf) = sign_in(&console, &alice).await;
    let before = issuances(&env).await;

    let post = |form: Vec<(&'static str, String)>, origin: Option<&'static str>| {
        let mut request = console
            .http
            .post(format!("{}/credentials", console.url))
            .header("cookie", &session)
            .form(&form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let target = ("target", "web-readonly".to_owned());
    // A cross-site form post: the session cookie, no token.
    let forged = post(vec![target.clone()], Some("https://evil.example.net"))
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("csrf_failed"));
    // No token, our own origin; a wrong token; the right token from another origin.
    let missing = post(vec![target.clone()], None).await.unwrap();
    assert_eq!(missing.status(), 403);
    let wrong = post(vec![target.clone(), ("csrf", "x".repeat(43))], None)
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let elsewhere = post(
        vec![target.clone(), ("csrf", csrf.clone())],
        Some("https://evil.example.net"),
    )
    .await
    .unwrap();
    assert_eq!(elsewhere.status(), 403);
    assert_eq!(issuances(&env).await, before, "nothing was issued");

    // The same form, from our own page, works (and is audited as any issuance is).
    let genuine = post(
        vec![target, ("csrf", csrf)],
        Some(Box::leak(console.url.clone().into_boxed_str())),
    )
    .await
    .unwrap();
    assert_eq!(genuine.status(), 200);
    assert_eq!(genuine.headers()["cache-control"], "no-store");
    assert!(genuine.text().await.unwrap().contains("AWS_SESSION_TOKEN"));
    assert_eq!(issuances(&env).await, before + 1);
}

/// A page read with a session cookie: its status and its HTML.
async fn page(console: &Console, session: &str, path: &str) -> (StatusCode, String) {
    let answer = console
        .http
        .get(format!("{}{path}", console.url))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

/// A form posted from our own page (our origin, the session's token first).
async fn post_form(
    console: &Console,
    (session, csrf): &(String, String),
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    console
        .http
        .post(format!("{}{path}", console.url))
        .header("cookie", session)
        .header("origin", &console.url)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The refusal drawn under field `id` (`f-...`), if there is one: its words, code and request.
fn error_under(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("<p class=\"error\" id=\"{id}-error\">"))?;
    let rest = &html[at..];
    Some(rest[..rest.find("</p>").unwrap()].to_owned())
}

/// How many audit records of `event` `actor` has.
async fn events_of(env: &TestEnv, actor: &UserName, event: &str) -> usize {
    trail(env)
        .await
        .iter()
        .filter(|(a, e)| a == actor.as_str() && e == event)
        .count()
}

/// An approval another approver gave first: the late approver's page says so, in words, with
/// its code (409), though there is no longer a form to put it under.
#[tokio::test]
async fn an_approval_given_meanwhile_is_said_on_the_late_approvers_page() {
    let env = TestEnv::start().await;
    let console = console(&env).await;
    env.account(ACCOUNT_A).await;
    let alice = person(&env, &console, "alice").await;
    let bob = person(&env, &console, "bob").await;
    let carol = person(&env, &console, "carol").await;
    let mut target = env.role_target("web-guarded", ACCOUNT_A, 10, None).await;
    target.approvers = vec![
        Principal::User(bob.name.clone()),
        Principal::User(carol.name.clone()),
    ];
    env.directory.put_target(&target).await.unwrap();
    env.grant_target(Principal::User(alice.name.clone()), "web-guarded")
        .await;
    let alices = sign_in(&console, &alice).await;
    let opened = post_form(
        &console,
        &alices,
        "/approvals",
        &[("target", "web-guarded"), ("reason", "Incident 4711")],
    )
    .await;
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    let location = opened.headers()["location"].to_str().unwrap().to_owned();
    let (bobs, carols) = (
        sign_in(&console, &bob).await,
        sign_in(&console, &carol).await,
    );
    let (_, waiting) = page(&console, &carols.0, &location).await;
    assert!(
        waiting.contains(&format!("action=\"{location}/approve\"")),
        "{waiting}"
    );

    let approved = post_form(
        &console,
        &bobs,
        &format!("{location}/approve"),
        &[("totp", bob.code().as_str())],
    )
    .await;
    assert_eq!(approved.status(), StatusCode::OK);
    let late = post_form(
        &console,
        &carols,
        &format!("{location}/approve"),
        &[("totp", carol.code().as_str())],
    )
    .await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    let html = late.text().await.unwrap();
    let alert = &html[html.find("role=\"alert\"").expect("the refusal is shown")..];
    assert!(alert.contains("<code>approval_decided</code>"), "{html}");
}

/// Just-in-time access in the console, by plain HTTP: alice asks for a target she does not
/// hold, carol (an approver the target names) finds it waiting for her and approves with her
/// own code, and alice has the target until she ends it; then one denied and one withdrawn;
/// refusals are shown in words next to their field, a stranger gets a 404, and a cross-site form
/// opens nothing.
#[tokio::test]
async fn access_is_asked_for_approved_used_and_ended_in_the_console() {
    let env = TestEnv::start().await;
    let console = console(&env).await;
    env.account(ACCOUNT_A).await;
    let alice = person(&env, &console, "alice").await;
    let carol = person(&env, &console, "carol").await;
    let bob = person(&env, &console, "bob").await;
    let mut target = env.role_target("web-jit", ACCOUNT_A, 3, None).await;
    target.access_requests = Some(
        cooper_core::model::requests::RequestPolicy::new(
            vec![Principal::User(carol.name.clone())],
            None,
            None,
        )
        .unwrap(),
    );
    env.directory.put_target(&target).await.unwrap();

    // alice does not hold it; her targets page says where to ask.
    let alices = sign_in(&console, &alice).await;
    let (_, targets) = page(&console, &alices.0, "/targets").await;
    assert!(!targets.contains("web-jit"));
    assert!(targets.contains("href=\"/access-requests\""), "{targets}");
    let (status, empty) = page(&console, &alices.0, "/access-requests").await;
    assert_eq!(status, 200);
    assert!(empty.contains("Nobody is waiting for you to approve."));

    // A target nobody may ask for is refused next to the target field, the form kept.
    let refused = post_form(
        &console,
        &alices,
        "/access-requests",
        &[
            ("target", "no-such-target"),
            ("duration", "3600"),
            ("reason", "Incident 4711"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let html = refused.text().await.unwrap();
    let under = error_under(&html, "f-target").expect("the refusal under the target field");
    assert!(under.contains("not_requestable"), "{under}");
    assert!(
        html.contains("value=\"Incident 4711\""),
        "the reason is kept"
    );
    // So is a duration the target's policy does not allow, under the seconds typed.
    let refused = post_form(
        &console,
        &alices,
        "/access-requests",
        &[
            ("target", "web-jit"),
            ("duration_seconds", "60"),
            ("reason", "Incident 4711"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.unwrap();
    let under = error_under(&html, "f-duration_seconds").expect("under the seconds");
    assert!(under.contains("invalid_duration"), "{under}");

    // A cross-site form (another origin, or a browser saying cross-site, or no token) opens
    // nothing.
    let before = events_of(&env, &alice.name, "access.requested").await;
    let ask = [
        ("target", "web-jit"),
        ("duration", "3600"),
        ("reason", "Incident 4711"),
    ];
    for (token, origin, site) in [
        (
            Some(alices.1.as_str()),
            Some("https://evil.example.net"),
            None,
        ),
        (Some(alices.1.as_str()), None, Some("cross-site")),
        (None, Some(console.url.as_str()), None),
    ] {
        let mut form: Vec<(&str, &str)> = ask.to_vec();
        form.extend(token.map(|t| ("csrf", t)));
        let mut request = console
            .http
            .post(format!("{}/access-requests", console.url))
            .header("cookie", &alices.0)
            .form(&form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        let forged = request.send().await.unwrap();
        assert_eq!(
            forged.status(),
            StatusCode::FORBIDDEN,
            "{origin:?} {site:?}"
        );
        assert!(forged.text().await.unwrap().contains("csrf_failed"));
    }
    assert_eq!(
        events_of(&env, &alice.name, "access.requested").await,
        before,
        "nothing was asked"
    );

    // Everything from here is the web console's doing: every write it makes must be one the
    // web-console function's policy allows (infra/function-policies.json).
    let ((), calls) = env
        .moto
        .record(async {
            // alice asks, and lands on the request's page.
            let asked = post_form(&console, &alices, "/access-requests", &ask).await;
            assert_eq!(asked.status(), StatusCode::SEE_OTHER);
            let location = asked.headers()["location"].to_str().unwrap().to_owned();
            let id = location
                .strip_prefix("/access-requests/")
                .expect("the request's page")
                .to_owned();
            let (status, mine) = page(&console, &alices.0, &location).await;
            assert_eq!(status, 200);
            assert!(mine.contains("waiting for an approver"), "{mine}");
            assert!(mine.contains(&format!("action=\"/access-requests/{id}/cancel\"")));
            assert!(
                !mine.contains("/approve\""),
                "no approve form for the requester"
            );
            let (_, list) = page(&console, &alices.0, "/access-requests").await;
            let yours = &list[list.find("id=\"mine-h\"").unwrap()..];
            assert!(yours.contains(&id), "under her requests");

            // Someone it did not ask sees no such request; nor does anyone see a garbage id.
            let bobs = sign_in(&console, &bob).await;
            for path in [location.as_str(), "/access-requests/not-an-id"] {
                let (status, html) = page(&console, &bobs.0, path).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
                assert!(html.contains("access_request_not_found"), "{path}");
            }
            let tried = post_form(&console, &bobs, &format!("{location}/deny"), &[]).await;
            assert_eq!(tried.status(), StatusCode::NOT_FOUND);
            let (_, list) = page(&console, &bobs.0, "/access-requests").await;
            assert!(!list.contains(&id), "nor is it listed for him");

            // carol finds it waiting for her.
            let carols = sign_in(&console, &carol).await;
            let (_, list) = page(&console, &carols.0, "/access-requests").await;
            let waiting =
                &list[list.find("id=\"waiting-h\"").unwrap()..list.find("id=\"ask-h\"").unwrap()];
            assert!(
                waiting.contains(&format!("href=\"/access-requests/{id}\"")),
                "{waiting}"
            );
            assert!(waiting.contains("alice") && waiting.contains("Incident 4711"));
            let (_, theirs) = page(&console, &carols.0, &location).await;
            assert!(theirs.contains(&format!("action=\"/access-requests/{id}/approve\"")));
            assert!(theirs.contains(&format!("action=\"/access-requests/{id}/deny\"")));

            // A wrong code is refused next to her code field, in words, with the code and request id.
            let wrong = post_form(
                &console,
                &carols,
                &format!("{location}/approve"),
                &[("totp", "000000")],
            )
            .await;
            assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
            let html = wrong.text().await.unwrap();
            let under =
                error_under(&html, "f-approve-totp").expect("the refusal under the code field");
            assert!(under.contains("approver_totp_invalid"), "{under}");
            assert!(under.contains("request "), "{under}");
            assert!(html.contains("aria-invalid=\"true\""));
            assert!(html.contains("waiting for an approver"), "still waiting");
            assert_eq!(events_of(&env, &carol.name, "access.refused").await, 1);

            // With her own code it is approved.
            let code = carol.code();
            let approved = post_form(
                &console,
                &carols,
                &format!("{location}/approve"),
                &[("totp", code.as_str()), ("duration", "")],
            )
            .await;
            assert_eq!(
                approved.status(),
                StatusCode::SEE_OTHER,
                "{}",
                approved.text().await.unwrap()
            );
            let back = approved.headers()["location"].to_str().unwrap().to_owned();
            assert_eq!(back, format!("{location}?done=approved"));
            let (_, done) = page(&console, &carols.0, &back).await;
            assert!(done.contains("Approved: the requester has the access now."));
            assert!(done.contains("approved: the access is live"));
            assert!(done.contains("End access now"), "an approver may end it");
            assert_eq!(events_of(&env, &carol.name, "access.approved").await, 1);

            // alice holds the target now, and gets credentials for it through the console's form.
            let (_, targets) = page(&console, &alices.0, "/targets").await;
            assert!(targets.contains("href=\"/targets/web-jit\""), "{targets}");
            let issued = post_form(
                &console,
                &alices,
                "/credentials",
                &[("target", "web-jit"), ("duration", "900")],
            )
            .await;
            assert_eq!(issued.status(), 200);
            assert!(issued.text().await.unwrap().contains("AWS_SESSION_TOKEN"));

            // She ends it early: the target is gone from her list.
            let ended = post_form(
                &console,
                &alices,
                &format!("{location}/cancel"),
                &[("reason", "Fixed")],
            )
            .await;
            assert_eq!(ended.status(), StatusCode::SEE_OTHER);
            let (_, over) = page(&console, &alices.0, &location).await;
            assert!(over.contains("ended"), "{over}");
            assert!(!over.contains("/cancel\""), "nothing more to end");
            let (_, targets) = page(&console, &alices.0, "/targets").await;
            assert!(!targets.contains("href=\"/targets/web-jit\""));
            assert_eq!(events_of(&env, &alice.name, "access.ended").await, 1);

            // Asked again: carol denies it, saying why, and alice reads why.
            let again = post_form(&console, &alices, "/access-requests", &ask).await;
            assert_eq!(again.status(), StatusCode::SEE_OTHER);
            let again = again.headers()["location"].to_str().unwrap().to_owned();
            let denied = post_form(
                &console,
                &carols,
                &format!("{again}/deny"),
                &[("reason", "Use the read-only role")],
            )
            .await;
            assert_eq!(denied.status(), StatusCode::SEE_OTHER);
            let (_, seen) = page(&console, &alices.0, &again).await;
            assert!(seen.contains("denied") && seen.contains("Use the read-only role"));
            assert!(!seen.contains("/cancel\""), "nothing to withdraw");
            // And once more: alice withdraws it herself.
            let third = post_form(&console, &alices, "/access-requests", &ask).await;
            let third = third.headers()["location"].to_str().unwrap().to_owned();
            let withdrawn = post_form(&console, &alices, &format!("{third}/cancel"), &[]).await;
            assert_eq!(withdrawn.status(), StatusCode::SEE_OTHER);
            let (_, seen) = page(&console, &alices.0, &third).await;
            assert!(seen.contains("withdrawn"), "{seen}");
            let (_, list) = page(&console, &carols.0, "/access-requests").await;
            assert!(list.contains("Nobody is waiting for you to approve."));
        })
        .await;
    let written = crate::policies::allowed(&env, "web-console", &calls);
    for prefix in ["ACCESSREQ#", "ASKING#", "JIT#", "audit"] {
        assert!(written.contains(prefix), "{prefix} in {written:?}");
    }
}

#[tokio::test]
async fn a_console_cookie_opens_no_api_call_and_a_console_session_is_no_bearer() {
    let env = TestEnv::start().await;
    let console = console(&env).await;
    let alice = person(&env, &console, "alice").await;
    let (session, _) = sign_in(&console, &alice).await;

    // The session cookie on an API call authenticates nothing.
    let whoami = console
        .http
        .get(format!("{}/v1/whoami", console.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(whoami.status(), StatusCode::UNAUTHORIZED);
    // Nor does the console's session token as a bearer: it is for another audience.
    let token = session.split_once('=').unwrap().1;
    let bearer = console
        .http
        .get(format!("{}/v1/whoami", console.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    // And an API session does not sign a browser in.
    let api_session = env.jwt(&alice.name);
    let page = console
        .http
        .get(format!("{}/targets", console.url))
        .header("cookie", format!("cooper_session={api_session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/signin");
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let env = TestEnv::start().await;
    let console = console(&env).await;
    env.account(ACCOUNT_A).await;
    env.role_target("web-readonly", ACCOUNT_A, 1, None).await;
    let alice = person(&env, &console, "alice").await;
    env.grant_target(Principal::User(alice.name.clone()), "web-readonly")
        .await;
    env.directory
        .put_admin_grant(&cooper_core::admin::scope::AdminGrant {
            principal: Principal::User(alice.name.clone()),
            account: None,
        })
        .await
        .unwrap();
    let (session, _) = sign_in(&console, &alice).await;
    let pages = [
        "/signin",
        "/targets",
        "/targets/web-readonly",
        "/authenticator",
        "/approvals",
        "/access-requests",
        "/admin",
        "/admin/accounts",
        &format!("/admin/accounts/{ACCOUNT_A}"),
        "/admin/users",
        "/admin/groups",
        "/no-such-page",
    ];
    for path in pages {
        // The sign-in page is for a browser not signed in (a signed-in one goes on to targets).
        let cookie = if path == "/signin" {
            ""
        } else {
            session.as_str()
        };
        let answer = console
            .http
            .get(format!("{}{path}", console.url))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let h = answer.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(
            h["content-type"].to_str().unwrap().starts_with("text/html"),
            "{path}"
        );
        let expected = if path == "/no-such-page" { 404 } else { 200 };
        assert_eq!(status, expected, "{path}");
        let html = answer.text().await.unwrap();
        assert!(!html.contains("<script>"), "{path}: no inline script");
        assert!(!html.contains(" style="), "{path}: no inline style");
    }
    // The assets are cached for a year: their URL carries their content's hash.
    let css = console
        .http
        .get(format!("{}/assets/cooper.css", console.url))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    // The API keeps its JSON 404.
    let api = console
        .http
        .get(format!("{}/v1/nothing", console.url))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(api.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn a_refused_sign_in_says_the_same_whatever_was_wrong() {
    let env = TestEnv::start().await;
    let console = console(&env).await;
    let alice = person(&env, &console, "alice").await;
    let mut answers = Vec::new();
    for (user, password, code) in [
        ("nobody", alice.password.clone(), alice.code()),
        ("alice", "a wrong passphrase here".to_owned(), alice.code()),
        ("alice", alice.password.clone(), "000000".to_owned()),
        ("not a name!", alice.password.clone(), alice.code()),
    ] {
        let page = console
            .http
            .get(format!("{}/signin", console.url))
            .send()
            .await
            .unwrap();
        let pre = cookies(&page).join("; ");
        let token = csrf_in(&page.text().await.unwrap());
        let refused = console
            .http
            .post(format!("{}/signin", console.url))
            .header("cookie", &pre)
            .form(&[
                ("csrf", token.as_str()),
                ("user", user),
                ("password", password.as_str()),
                ("totp", code.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let status = refused.status();
        assert!(
            refused
                .headers()
                .get("set-cookie")
                .is_none_or(|c| !c.to_str().unwrap().contains("cooper_session=e"))
        );
        let html = refused.text().await.unwrap();
        let message = html
            .split("role=\"alert\"><p>")
            .nth(1)
            .map(|m| m.split('<').next().unwrap().to_owned());
        answers.push((status, message));
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert!(answers[0].1.is_some());
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "the same answer each time: {answers:?}"
    );
}

/// The console in a real browser: tests/web/browser.py drives Debian's Chromium with
/// Playwright through sign-in, targets, credentials (used with boto3), the console hand-off,
/// enrolling a new authenticator, an approval by a second person, an access request approved by
/// an approver, and an account admin's audit view; it writes screenshots to docs/screenshots/.
#[tokio::test]
async fn the_console_in_a_real_browser() {
    let env = TestEnv::start().await;
    // A real OpenID Provider, offered on the sign-in page (the code flow with PKCE).
    let idp = OpenIdProvider::start(&["sso-engineers"]);
    let mut provider = idp.config();
    provider.audiences.push("cooper-console".into());
    provider.console_client_id = Some("cooper-console".into());
    provider.name = Some("Test IdP".into());
    let console = console_with(&env, |s| s.oidc_providers = vec![provider]).await;
    env.account(ACCOUNT_A).await;
    env.account(ACCOUNT_B).await;
    env.role_target("web-readonly", ACCOUNT_A, 1, None).await;
    let mut secure = env.role_target("web-secure", ACCOUNT_A, 2, None).await;
    secure.high_security = true;
    env.directory.put_target(&secure).await.unwrap();
    env.role_target("web-denied", ACCOUNT_A, 5, None).await;
    env.role_target("other-readonly", ACCOUNT_B, 1, None).await;
    let alice = person(&env, &console, "alice").await;
    let bob = person(&env, &console, "bob").await;
    let carol = person(&env, &console, "carol").await;
    let mut gated = env.role_target("web-breakglass", ACCOUNT_A, 3, None).await;
    gated.approvers = vec![Principal::User(bob.name.clone())];
    env.directory.put_target(&gated).await.unwrap();
    // Nobody holds web-jit; anyone may ask carol for it.
    let mut requestable = env.role_target("web-jit", ACCOUNT_A, 4, None).await;
    requestable.access_requests = Some(
        cooper_core::model::requests::RequestPolicy::new(
            vec![Principal::User(carol.name.clone())],
            None,
            None,
        )
        .unwrap(),
    );
    env.directory.put_target(&requestable).await.unwrap();
    let alices = Principal::User(alice.name.clone());
    for target in ["web-readonly", "web-secure", "web-breakglass"] {
        env.grant_target(alices.clone(), target).await;
    }
    env.grant_target(Principal::User(bob.name.clone()), "other-readonly")
        .await;
    // carol administers account A only.
    env.directory
        .put_admin_grant(&cooper_core::admin::scope::AdminGrant {
            principal: Principal::User(carol.name.clone()),
            account: Some(cooper_core::names::AccountId::parse(ACCOUNT_A).unwrap()),
        })
        .await
        .unwrap();
    // Something in account B's trail that carol must not see.
    let bobs = sign_in(&console, &bob).await;
    let other = console
        .http
        .post(format!("{}/credentials", console.url))
        .header("cookie", &bobs.0)
        .header("origin", &console.url)
        .form(&[("target", "other-readonly"), ("csrf", bobs.1.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    // erin signs in with the identity provider; its group grants her a target.
    env.user("erin@example.com").await;
    env.group("sso-engineers", &[]).await;
    env.grant_target(
        Principal::Group(cooper_core::names::GroupName::parse("sso-engineers").unwrap()),
        "web-readonly",
    )
    .await;

    // dave enrolls in the browser, with the one-time code an admin gave him.
    let dave = env.user("dave").await;
    let daves_code = env.enrollment_code(&dave).await;
    env.grant_target(Principal::User(dave.clone()), "web-readonly")
        .await;

    let person_json = |p: &Person| json!({"user": p.name.as_str(), "password": p.password, "uri": p.uri, "last_step": p.last_step.get()});
    let fixture = json!({
        "url": console.url,
        "aws_endpoint": env.moto.endpoint,
        "account_a": ACCOUNT_A,
        "account_b": ACCOUNT_B,
        "alice": person_json(&alice),
        "bob": person_json(&bob),
        "carol": person_json(&carol),
        "dave": {"user": dave.as_str(), "enrollment_code": daves_code},
        "granted": ["web-breakglass", "web-readonly", "web-secure"],
        "requestable": "web-jit",
        "screenshots": repo_root().join("docs/screenshots"),
    });
    let path = std::env::temp_dir().join(format!("cooper-web-{}.json", std::process::id()));
    std::fs::write(&path, fixture.to_string()).unwrap();
    let root = repo_root();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/web/browser.py"))
            .arg(&path)
            .output()
    })
    .await
    .unwrap()
    .expect("tests/web/browser.py runs (make deps installs Playwright and Chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
    // What the browser did is in the trail: alice's issuances, bob's approval, the enrollment,
    // alice's access request and carol's approval of it.
    let events: Vec<String> = trail(&env)
        .await
        .into_iter()
        .filter(|(actor, _)| {
            [&alice, &bob, &carol]
                .iter()
                .any(|p| actor == p.name.as_str())
        })
        .map(|(_, event)| event)
        .collect();
    for event in [
        "credentials.issued",
        "console.issued",
        "approval.approved",
        "totp.enrolled",
        "access.requested",
        "access.approved",
    ] {
        assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
    }
}

/// A provider's callback this browser did not start (no flow cookie, or another state), or a
/// provider's error, signs nobody in: the login-CSRF and code-injection cases of the code flow.
#[tokio::test]
async fn an_identity_provider_callback_this_browser_did_not_start_signs_nobody_in() {
    let env = TestEnv::start().await;
    let idp = OpenIdProvider::start(&["sso-engineers"]);
    let mut provider = idp.config();
    provider.audiences.push("cooper-console".into());
    provider.console_client_id = Some("cooper-console".into());
    let console = console_with(&env, |s| s.oidc_providers = vec![provider]).await;

    // Starting sets the flow cookie and sends the browser to the provider with PKCE (S256).
    let started = console
        .http
        .get(format!("{}/signin/oidc/0", console.url))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&idp.issuer), "{location}");
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "state=",
        "client_id=cooper-console",
    ] {
        assert!(location.contains(part), "{part} in {location}");
    }
    let flow = cookies(&started).join("; ");
    assert!(
        started.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("SameSite=Lax")
    );

    for (cookie, query) in [
        ("", "code=abc&state=whatever"),
        (flow.as_str(), "code=abc&state=not-the-one-sent"),
        (flow.as_str(), "error=access_denied&state=x"),
    ] {
        let back = console
            .http
            .get(format!("{}/signin/oidc/callback?{query}", console.url))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(back.status(), StatusCode::UNAUTHORIZED, "{query}");
        let set: Vec<String> = cookies(&back);
        assert!(
            !set.iter()
                .any(|c| c.starts_with("cooper_session=") && c.len() > "cooper_session=".len()),
            "{query}: no session: {set:?}"
        );
    }
    // An unknown provider, and a deployment without one, are refused in words.
    let unknown = console
        .http
        .get(format!("{}/signin/oidc/7", console.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
}

/// A confidential console client (a web application with a secret, as most providers register
/// the console): the secret comes from SSM, never the configuration, and reaches the provider's
/// token endpoint, which signs the browser in; a wrong secret signs nobody in, and a missing one
/// stops the console at start-up, naming the parameter.
#[tokio::test]
async fn a_confidential_console_client_signs_in_with_its_secret_from_ssm() {
    use cooper_aws::aws_sdk_ssm::types::ParameterType;
    let env = TestEnv::start().await;
    let idp = OpenIdProvider::start(&["sso-engineers"]);
    let mut provider = idp.config();
    provider
        .audiences
        .push("cooper-console-confidential".into());
    provider.console_client_id = Some("cooper-console-confidential".into());
    provider.console_client_secret_parameter = Some("oidc/test/client-secret".into());
    let parameter = format!("{}/oidc/test/client-secret", env.settings.ssm_prefix);
    let ssm = cooper_aws::aws_sdk_ssm::Client::new(&env.sdk);

    // Not in SSM: the console does not start, and says which parameter is missing.
    let mut settings = env.settings.clone();
    settings.oidc_providers = vec![provider.clone()];
    let Err(missing) = load_all(&env.app_sdk, &settings).await else {
        panic!("a console client without its secret must not start");
    };
    assert!(missing.to_string().contains(&parameter), "{missing}");

    let sign_in = |secret: &'static str| {
        let (env, idp, provider, ssm, parameter) = (&env, &idp, provider.clone(), &ssm, &parameter);
        async move {
            ssm.put_parameter()
                .name(parameter)
                .value(secret)
                .r#type(ParameterType::SecureString)
                .overwrite(true)
                .send()
                .await
                .unwrap();
            let console = console_with(env, |s| s.oidc_providers = vec![provider]).await;
            let started = console
                .http
                .get(format!("{}/signin/oidc/0", console.url))
                .send()
                .await
                .unwrap();
            assert_eq!(started.status(), 303);
            let flow = cookies(&started).join("; ");
            let location = started.headers()["location"].to_str().unwrap().to_owned();
            let callback = idp
                .sign_in(&location, "gina")
                .await
                .expect("the provider sends the browser back");
            let callback = callback.replacen("http://127.0.0.1/", &format!("{}/", console.url), 1);
            let back = console
                .http
                .get(&callback)
                .header("cookie", flow)
                .send()
                .await
                .unwrap();
            let status = back.status();
            let signed_in = cookies(&back)
                .iter()
                .any(|c| c.starts_with("cooper_session=") && c.len() > "cooper_session=".len());
            (status, signed_in, back.text().await.unwrap())
        }
    };
    let (status, signed_in, page) = sign_in("console-secret+/:1").await;
    assert!(signed_in, "{status}: {page}");
    // The provider refuses a wrong secret: nobody is signed in, and the page says cooper's
    // client is at fault (not the person).
    let (status, signed_in, page) = sign_in("not-the-secret").await;
    assert!(!signed_in, "{status}");
    assert!(page.contains("identity_provider_unavailable"), "{page}");
}
