//! `/admin/profiles`: the directory profiles list, the create and edit forms (type-specific
//! fields swapped in by htmx), test connection and the group picker (dialogs; the same
//! handlers show their result inline for plain form posts), delete, certificate download.

use actix_web::http::{StatusCode, header};
use actix_web::web::{Bytes, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::audit::Action;
use crate::db::models::dependent_configurations::{self, DependentConfiguration};
use crate::db::models::directory_profiles::{self, DeleteOutcome, DirectoryProfile, ProfileKind};
use crate::directory::{ConnectionReport, Connector, DirectoryGroup};
use crate::error::AppError;
use crate::page;
use crate::profiles::certificate::{self, CertificateInfo};
use crate::profiles::connector::ConnectorError;
use crate::profiles::fields::{self, Input};
use crate::profiles::form::{self, CertificateAction, Checked, Posted};
use crate::profiles::store::{self, StoreError};
use crate::profiles::{KindSettings, SecretSlot};
use crate::state::AppState;
use crate::validation::FieldErrors;
use crate::web::admin::users::PrivilegeChoice;
use crate::web::extract::{Admin, SignedIn};
use crate::web::render::{Chrome, fragment, redirect, render};

// ---------------------------------------------------------------------------------------
// List

pub struct ProfileRow {
    pub id: i64,
    pub name: String,
    pub kind_label: &'static str,
    pub delete_users: bool,
    pub delete_groups: bool,
    /// Test settings, synchronise now and history (kinds with a connector).
    pub can_sync: bool,
}

#[derive(Template)]
#[template(path = "partials/admin/profiles_partial.html")]
pub struct ProfilesPartial {
    pub title: String,
    pub csrf_token: String,
    pub query: String,
    pub descending: bool,
    pub rows: Vec<ProfileRow>,
    /// The link that sorts the other way, keeping the search.
    pub sort_link: String,
    pub refresh_link: String,
}
page!(ProfilesPage, "pages/admin/profiles.html", ProfilesPartial);

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
}

pub async fn list(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    query: Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.q.trim().chars().take(200).collect::<String>();
    let descending = query.sort == "desc";
    let needle = q.clone();
    let profiles = state
        .db
        .run(move |c| directory_profiles::list(c, &needle, descending).map_err(AppError::from))
        .await?;
    let encoded = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let link = |desc: bool| {
        format!(
            "/admin/profiles?q={encoded}&sort={}",
            if desc { "desc" } else { "asc" }
        )
    };
    let partial = ProfilesPartial {
        title: "Directory profiles".into(),
        csrf_token: crate::web::csrf::token(&req, &state),
        sort_link: link(!descending),
        refresh_link: link(descending),
        query: q,
        descending,
        rows: profiles
            .into_iter()
            .map(|p| ProfileRow {
                kind_label: p.kind().map(ProfileKind::label).unwrap_or("unknown"),
                can_sync: p.kind().is_some_and(fields::has_connector),
                id: p.id,
                name: p.name,
                delete_users: p.delete_users,
                delete_groups: p.delete_groups,
            })
            .collect(),
    };
    render(&req, StatusCode::OK, partial, || {
        Chrome::new(&req, &state, Some(&me), "profiles")
    })
}

// ---------------------------------------------------------------------------------------
// The form

/// One type-specific field as the template shows it.
pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub required: bool,
    /// `text`, `number`, `checkbox`, `secret` or `select`.
    pub input: &'static str,
    pub value: String,
    pub checked: bool,
    pub options: Vec<(&'static str, &'static str, bool)>,
    pub error: Option<String>,
    /// A secret is stored: leaving the field blank keeps it.
    pub stored: bool,
}

pub struct EntraView {
    /// `generate`, `import` or `keep`.
    pub mode: String,
    pub certificate_import: String,
    pub stored: Option<CertificateInfo>,
    pub download_link: Option<String>,
}

pub struct GoogleView {
    /// The stored key's service account and key id.
    pub stored: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "partials/admin/profile_kind_fields_partial.html")]
pub struct KindFieldsPartial {
    pub kind: &'static str,
    pub kind_label: &'static str,
    pub fields: Vec<FieldView>,
    pub groups_label: &'static str,
    pub groups_to_sync: String,
    pub has_connector: bool,
    pub test_link: String,
    pub groups_link: String,
    pub entra: Option<EntraView>,
    pub google: Option<GoogleView>,
    pub redirect_uri: Option<String>,
    pub redirect_slug: String,
    pub offer_dependents: bool,
    pub create_dependents: bool,
    pub errors: FieldErrors,
}

pub struct KindChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "partials/admin/profile_form_partial.html")]
pub struct ProfileFormPartial {
    pub title: String,
    pub csrf_token: String,
    /// The profile being edited; `None` on create.
    pub editing: Option<i64>,
    pub form_action: String,
    pub kinds: Vec<KindChoice>,
    pub kind_label: &'static str,
    pub name: String,
    pub delete_users: bool,
    pub delete_groups: bool,
    pub mfa_by_default: bool,
    pub privileges: Vec<PrivilegeChoice>,
    pub threshold_count: String,
    pub threshold_percent: String,
    pub errors: FieldErrors,
    pub kind_fields: KindFieldsPartial,
    pub dependents: Vec<DependentConfiguration>,
    /// Test connection / group picker output for plain form posts (htmx shows a dialog).
    pub inline_result: Option<String>,
}
page!(
    ProfileFormPage,
    "pages/admin/profile_form.html",
    ProfileFormPartial
);

#[derive(Template)]
#[template(path = "partials/admin/profile_choose_partial.html")]
pub struct ChooseKindPartial {
    pub title: String,
    pub kinds: Vec<KindChoice>,
}
page!(
    ChooseKindPage,
    "pages/admin/profile_choose.html",
    ChooseKindPartial
);

/// Everything the form needs besides the posted values.
struct FormContext<'a> {
    kind: ProfileKind,
    editing: Option<&'a DirectoryProfile>,
    stored: Option<&'a KindSettings>,
    dependents: Vec<DependentConfiguration>,
}

fn kind_choices(selected: Option<ProfileKind>) -> Vec<KindChoice> {
    ProfileKind::ALL
        .into_iter()
        .map(|k| KindChoice {
            value: k.as_str(),
            label: k.label(),
            selected: Some(k) == selected,
        })
        .collect()
}

fn base_url(req: &HttpRequest, state: &AppState) -> String {
    match &state.settings.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

fn kind_fields(
    req: &HttpRequest,
    state: &AppState,
    ctx: &FormContext<'_>,
    values: &Posted,
    errors: &FieldErrors,
) -> KindFieldsPartial {
    let kind = ctx.kind;
    let stored = ctx.stored;
    let fields = fields::for_kind(kind)
        .iter()
        .map(|spec| {
            let slot = SecretSlot::ALL.into_iter().find(|s| s.field() == spec.name);
            let (input, options) = match spec.input {
                Input::Text => ("text", Vec::new()),
                Input::Number => ("number", Vec::new()),
                Input::Checkbox => ("checkbox", Vec::new()),
                Input::Secret => ("secret", Vec::new()),
                Input::Pem => ("pem", Vec::new()),
                Input::Select(opts) => (
                    "select",
                    opts.iter()
                        .map(|(v, l)| (*v, *l, values.get(spec.name) == *v))
                        .collect(),
                ),
            };
            FieldView {
                name: spec.name,
                label: spec.label,
                help: spec.help,
                required: spec.required,
                input,
                // Secrets are never sent back, not even the one just typed.
                value: if spec.input == Input::Secret {
                    String::new()
                } else {
                    values.get(spec.name).to_owned()
                },
                checked: values.checked(spec.name),
                options,
                error: errors.get(spec.name).map(str::to_owned),
                stored: slot.is_some_and(|s| stored.is_some_and(|st| st.secret(s).is_some())),
            }
        })
        .collect();
    let prefix = match ctx.editing {
        Some(p) => format!("/admin/profiles/{}", p.id),
        None => "/admin/profiles".into(),
    };
    let slug = stored
        .and_then(KindSettings::redirect_slug)
        .unwrap_or(values.get("redirect_slug"))
        .to_owned();
    let entra = (kind == ProfileKind::EntraId).then(|| {
        let info = match stored {
            Some(KindSettings::Entra(s)) if !s.certificate_pem.is_empty() => {
                certificate::info(&s.certificate_pem).ok()
            }
            _ => None,
        };
        let default_mode = if info.is_some() { "keep" } else { "generate" };
        let mode = match values.get("certificate_mode") {
            "" => default_mode.to_owned(),
            m => m.to_owned(),
        };
        EntraView {
            mode,
            certificate_import: values.get("certificate_import").to_owned(),
            download_link: match (info.is_some(), ctx.editing) {
                (true, Some(p)) => Some(format!("/admin/profiles/{}/certificate.pem", p.id)),
                _ => None,
            },
            stored: info,
        }
    });
    let google = (kind == ProfileKind::GoogleWorkspace).then(|| GoogleView {
        stored: match stored {
            Some(KindSettings::Google(s)) if s.service_account_key_secret.is_some() => Some((
                s.service_account_email.clone(),
                s.service_account_key_id.clone(),
            )),
            _ => None,
        },
    });
    let has_redirect = matches!(kind, ProfileKind::EntraId | ProfileKind::GoogleWorkspace);
    KindFieldsPartial {
        kind: kind.as_str(),
        kind_label: kind.label(),
        fields,
        groups_label: fields::groups_label(kind),
        groups_to_sync: values.get("groups_to_sync").to_owned(),
        has_connector: fields::has_connector(kind),
        test_link: format!("{prefix}/test-connection"),
        groups_link: format!("{prefix}/groups"),
        entra,
        google,
        redirect_uri: (has_redirect && !slug.is_empty())
            .then(|| crate::profiles::redirect_uri(&base_url(req, state), &slug)),
        redirect_slug: slug,
        offer_dependents: has_redirect && ctx.editing.is_none(),
        create_dependents: values.checked("create_dependents"),
        errors: errors.clone(),
    }
}

fn form_partial(
    req: &HttpRequest,
    state: &AppState,
    ctx: FormContext<'_>,
    values: &Posted,
    errors: FieldErrors,
    inline_result: Option<String>,
) -> ProfileFormPartial {
    let title = match ctx.editing {
        Some(p) => format!("Edit {}", p.name),
        None => format!("New {} profile", ctx.kind.label()),
    };
    let kind_fields = kind_fields(req, state, &ctx, values, &errors);
    ProfileFormPartial {
        title,
        csrf_token: crate::web::csrf::token(req, state),
        editing: ctx.editing.map(|p| p.id),
        form_action: match ctx.editing {
            Some(p) => format!("/admin/profiles/{}", p.id),
            None => "/admin/profiles".into(),
        },
        kinds: kind_choices(Some(ctx.kind)),
        kind_label: ctx.kind.label(),
        name: values.get("name").to_owned(),
        delete_users: values.checked("delete_users"),
        delete_groups: values.checked("delete_groups"),
        mfa_by_default: values.checked("mfa_by_default"),
        privileges: form::DEFAULT_PRIVILEGE_CHOICES
            .into_iter()
            .map(|p| PrivilegeChoice {
                value: p.as_str(),
                label: p.label(),
                checked: values.privileges.contains(&p),
            })
            .collect(),
        threshold_count: values.get("delete_threshold_count").to_owned(),
        threshold_percent: values.get("delete_threshold_percent").to_owned(),
        errors,
        kind_fields,
        dependents: ctx.dependents,
        inline_result,
    }
}

#[derive(Deserialize)]
pub struct KindQuery {
    #[serde(default)]
    kind: String,
}

/// Step one: the type. Step two (with `?kind=`): the form.
pub async fn new_form(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    query: Query<KindQuery>,
) -> Result<HttpResponse, AppError> {
    let chrome = || Chrome::new(&req, &state, Some(&me), "profiles");
    let Some(kind) = ProfileKind::parse(&query.kind) else {
        let partial = ChooseKindPartial {
            title: "New directory profile".into(),
            kinds: kind_choices(None),
        };
        return render(&req, StatusCode::OK, partial, chrome);
    };
    let values = form::values_of(kind, &KindSettings::defaults(kind), None);
    let ctx = FormContext {
        kind,
        editing: None,
        stored: None,
        dependents: Vec::new(),
    };
    let partial = form_partial(&req, &state, ctx, &values, FieldErrors::default(), None);
    render(&req, StatusCode::OK, partial, chrome)
}

/// The type-specific fields of a new profile with their defaults (the type chooser swaps
/// them in; what was typed in the old type's fields is dropped).
pub async fn new_kind_fields(
    req: HttpRequest,
    state: Data<AppState>,
    _admin: Admin,
    query: Query<KindQuery>,
) -> Result<HttpResponse, AppError> {
    let kind = ProfileKind::parse(&query.kind)
        .ok_or_else(|| AppError::BadRequest("Choose one of the six directory types.".into()))?;
    let values = form::values_of(kind, &KindSettings::defaults(kind), None);
    let ctx = FormContext {
        kind,
        editing: None,
        stored: None,
        dependents: Vec::new(),
    };
    fragment(kind_fields(
        &req,
        &state,
        &ctx,
        &values,
        &FieldErrors::default(),
    ))
}

/// Loads a profile with its settings and dependent configurations.
async fn load(
    state: &AppState,
    id: i64,
) -> Result<(DirectoryProfile, KindSettings, Vec<DependentConfiguration>), AppError> {
    let (profile, dependents) = state
        .db
        .run(move |c| {
            let profile = directory_profiles::find(c, id)?;
            let dependents = dependent_configurations::for_profile(c, id)?;
            Ok::<_, AppError>((profile, dependents))
        })
        .await?;
    let profile = profile.ok_or(AppError::NotFound)?;
    let settings = KindSettings::of(&profile).map_err(anyhow::Error::from)?;
    Ok((profile, settings, dependents))
}

pub async fn edit_form(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    path: Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (profile, settings, dependents) = load(&state, path.into_inner()).await?;
    let kind = profile.kind().ok_or(AppError::NotFound)?;
    let values = form::values_of(kind, &settings, Some(&profile));
    let ctx = FormContext {
        kind,
        editing: Some(&profile),
        stored: Some(&settings),
        dependents,
    };
    let partial = form_partial(&req, &state, ctx, &values, FieldErrors::default(), None);
    render(&req, StatusCode::OK, partial, || {
        Chrome::new(&req, &state, Some(&me), "profiles")
    })
}

pub async fn create(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let posted = Posted::parse(&body);
    let kind = ProfileKind::parse(posted.get("kind"))
        .ok_or_else(|| AppError::BadRequest("Choose one of the six directory types.".into()))?;
    let ctx = FormContext {
        kind,
        editing: None,
        stored: None,
        dependents: Vec::new(),
    };
    let checked = match form::check(kind, &posted, None) {
        Ok(checked) => checked,
        Err(errors) => return invalid(&req, &state, &me, ctx, &posted, errors),
    };
    let checked = with_certificate(checked).await?;
    let key = state.master_key.clone();
    let saved = state
        .db
        .run(move |c| Ok::<_, AppError>(store::create(c, &key, kind, checked)))
        .await?;
    let saved = match saved {
        Ok(saved) => saved,
        Err(StoreError::NameTaken) => return name_taken(&req, &state, &me, ctx, &posted),
        Err(e) => return Err(anyhow::Error::from(e).into()),
    };
    let name = posted.get("name").trim();
    crate::audit::record(
        &state.db,
        &crate::web::extract::actor(&req, &state, &me),
        Action::ProfileCreated,
        name,
        kind.label(),
    )
    .await?;
    audit_secrets(&req, &state, &me, name, &saved.secrets_changed).await?;
    Ok(redirect(&req, &format!("/admin/profiles/{}", saved.id)))
}

pub async fn update(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    path: Path<i64>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (profile, settings, dependents) = load(&state, id).await?;
    // The type never changes: a posted `kind` is ignored.
    let kind = profile.kind().ok_or(AppError::NotFound)?;
    let posted = Posted::parse(&body);
    let ctx = FormContext {
        kind,
        editing: Some(&profile),
        stored: Some(&settings),
        dependents,
    };
    let checked = match form::check(kind, &posted, Some(&settings)) {
        Ok(checked) => checked,
        Err(errors) => return invalid(&req, &state, &me, ctx, &posted, errors),
    };
    let checked = with_certificate(checked).await?;
    let changed = changed_settings(&profile, &checked);
    let key = state.master_key.clone();
    let saved = state
        .db
        .run(move |c| Ok::<_, AppError>(store::update(c, &key, id, checked)))
        .await?;
    let saved = match saved {
        Ok(saved) => saved,
        Err(StoreError::NameTaken) => return name_taken(&req, &state, &me, ctx, &posted),
        Err(StoreError::NotFound) => return Err(AppError::NotFound),
        Err(e) => return Err(anyhow::Error::from(e).into()),
    };
    let name = posted.get("name").trim();
    let detail = if profile.name == name {
        format!("changed: {changed}")
    } else {
        format!("renamed from {}; changed: {changed}", profile.name)
    };
    crate::audit::record(
        &state.db,
        &crate::web::extract::actor(&req, &state, &me),
        Action::ProfileUpdated,
        name,
        &detail,
    )
    .await?;
    audit_secrets(&req, &state, &me, name, &saved.secrets_changed).await?;
    Ok(redirect(&req, &format!("/admin/profiles/{id}")))
}

/// Names of the settings an edit changed (never their values: some are secrets' ids).
fn changed_settings(before: &DirectoryProfile, after: &Checked) -> String {
    let c = &after.changes;
    let mut names = Vec::new();
    let pairs = [
        ("name", before.name != c.name),
        ("delete users", before.delete_users != c.delete_users),
        ("delete groups", before.delete_groups != c.delete_groups),
        ("groups", before.groups_to_sync != c.groups_to_sync),
        ("domain", before.domain != c.domain),
        ("use local part", before.use_local_part != c.use_local_part),
        ("MFA by default", before.mfa_by_default != c.mfa_by_default),
        (
            "default privileges",
            before.default_privileges != c.default_privileges,
        ),
        (
            "deletion threshold",
            before.delete_threshold_count != c.delete_threshold_count
                || before.delete_threshold_percent != c.delete_threshold_percent,
        ),
    ];
    names.extend(
        pairs
            .iter()
            .filter(|(_, changed)| *changed)
            .map(|(n, _)| *n),
    );
    let settings_before = KindSettings::of(before).ok();
    if settings_before.as_ref() != Some(&after.settings) {
        names.push("type-specific settings");
    }
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// Makes the self-signed certificate when the form asks for one (off the async threads:
/// RSA key generation takes a moment).
async fn with_certificate(mut checked: Checked) -> Result<Checked, AppError> {
    if matches!(checked.certificate, CertificateAction::Generate) {
        let name = format!("Roster {}", checked.changes.name);
        let credential = tokio::task::spawn_blocking(move || certificate::generate(&name))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(anyhow::Error::from)?;
        checked.certificate = CertificateAction::Import(credential);
    }
    Ok(checked)
}

fn invalid(
    req: &HttpRequest,
    state: &AppState,
    me: &SignedIn,
    ctx: FormContext<'_>,
    posted: &Posted,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let partial = form_partial(req, state, ctx, posted, errors, None);
    render(req, StatusCode::UNPROCESSABLE_ENTITY, partial, || {
        Chrome::new(req, state, Some(me), "profiles")
    })
}

/// One event per secret written or removed: which secret, never its value.
/// The form again: another profile got the name first (checked in the saving transaction).
fn name_taken(
    req: &HttpRequest,
    state: &AppState,
    me: &SignedIn,
    ctx: FormContext<'_>,
    posted: &Posted,
) -> Result<HttpResponse, AppError> {
    let mut errors = FieldErrors::default();
    errors.add("name", "Name is already used by another profile.");
    invalid(req, state, me, ctx, posted, errors)
}

async fn audit_secrets(
    req: &HttpRequest,
    state: &AppState,
    me: &SignedIn,
    profile_name: &str,
    slots: &[SecretSlot],
) -> Result<(), AppError> {
    for slot in slots {
        let detail = format!("{} changed", slot.describe());
        crate::audit::record(
            &state.db,
            &crate::web::extract::actor(req, state, me),
            Action::ProfileSecretChanged,
            profile_name,
            &detail,
        )
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Test connection and the group picker

#[derive(Template)]
#[template(path = "partials/admin/profile_test_partial.html")]
pub struct TestResultPartial {
    pub report: Option<ConnectionReport>,
    pub error: Option<String>,
    /// Form errors that keep the test from running.
    pub problems: Vec<String>,
}

#[derive(Template)]
#[template(path = "partials/admin/profile_groups_partial.html")]
pub struct GroupsPartial {
    pub groups_link: String,
    pub search: String,
    /// (group, chosen)
    pub groups: Vec<(DirectoryGroup, bool)>,
    pub error: Option<String>,
    pub problems: Vec<String>,
}

/// The connector for the form as posted; blank secrets mean the stored ones. Form errors
/// in the type-specific fields come back as `Err` for the dialog to list.
async fn directory_for(
    state: &AppState,
    kind: ProfileKind,
    posted: &Posted,
    stored: Option<&KindSettings>,
) -> Result<Result<Connector, Vec<String>>, AppError> {
    if !fields::has_connector(kind) {
        return Ok(Err(vec![format!(
            "{} profiles cannot be tested in this version of Roster.",
            kind.label()
        )]));
    }
    let checked = match form::check(kind, posted, stored) {
        Ok(checked) => checked,
        Err(errors) => {
            // Only what the connection needs matters here (not the name, say).
            let relevant: Vec<String> = fields::for_kind(kind)
                .iter()
                .filter_map(|spec| errors.get(spec.name).map(str::to_owned))
                .collect();
            if !relevant.is_empty() {
                return Ok(Err(relevant));
            }
            let mut lenient = posted.clone();
            lenient.set("name", "connection test");
            lenient.set("delete_threshold_count", "1");
            lenient.set("delete_threshold_percent", "1");
            lenient.set("groups_to_sync", "");
            match form::check(kind, &lenient, stored) {
                Ok(checked) => checked,
                Err(_) => return Ok(Err(vec!["The form has errors.".into()])),
            }
        }
    };
    match state.connectors().for_form(&checked).await {
        Ok(connector) => Ok(Ok(connector)),
        Err(ConnectorError::NotAvailable(_)) => {
            Ok(Err(vec!["This type has no connector.".to_owned()]))
        }
        Err(e @ ConnectorError::Secret(_)) => Err(anyhow::Error::from(e).into()),
    }
}

#[derive(Clone, Copy)]
enum Probe {
    Test,
    Groups,
}

/// "Test connection": `/admin/profiles/test-connection` for an unsaved profile,
/// `/admin/profiles/{id}/test-connection` for a saved one (blank secrets = the stored ones).
pub async fn test_connection(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    path: Option<Path<i64>>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let id = path.map(Path::into_inner);
    probe(req, state, me, id, body, Probe::Test).await
}

/// The group picker, for an unsaved (`/admin/profiles/groups`) or a saved profile.
pub async fn groups(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    path: Option<Path<i64>>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let id = path.map(Path::into_inner);
    probe(req, state, me, id, body, Probe::Groups).await
}

async fn probe(
    req: HttpRequest,
    state: Data<AppState>,
    me: SignedIn,
    id: Option<i64>,
    body: Bytes,
    what: Probe,
) -> Result<HttpResponse, AppError> {
    let posted = Posted::parse(&body);
    let loaded = match id {
        Some(id) => Some(load(&state, id).await?),
        None => None,
    };
    let kind = match &loaded {
        Some((profile, ..)) => profile.kind().ok_or(AppError::NotFound)?,
        None => ProfileKind::parse(posted.get("kind"))
            .ok_or_else(|| AppError::BadRequest("Choose one of the six directory types.".into()))?,
    };
    let stored = loaded.as_ref().map(|(_, s, _)| s);
    let directory = directory_for(&state, kind, &posted, stored).await?;
    let html = match what {
        Probe::Test => {
            let partial = match directory {
                Err(problems) => TestResultPartial {
                    report: None,
                    error: None,
                    problems,
                },
                Ok(dir) => match dir.test_connection().await {
                    Ok(report) => TestResultPartial {
                        report: Some(report),
                        error: None,
                        problems: Vec::new(),
                    },
                    Err(e) => TestResultPartial {
                        report: None,
                        error: Some(e.explained()),
                        problems: Vec::new(),
                    },
                },
            };
            // Every Test connection is audited: it signs in somewhere with a password.
            let target = match &loaded {
                Some((profile, ..)) => profile.name.clone(),
                None => format!("new {} profile", kind.label()),
            };
            let outcome = match (&partial.report, &partial.error) {
                (Some(_), _) => "connected".to_owned(),
                (None, Some(e)) => format!("failed: {e}"),
                (None, None) => format!("not tried: {}", partial.problems.join(" ")),
            };
            let host = [posted.get("server"), posted.get("url")]
                .into_iter()
                .map(str::trim)
                .find(|v| !v.is_empty())
                .unwrap_or("");
            let detail = format!("server {host}: {outcome}");
            crate::audit::record(
                &state.db,
                &crate::web::extract::actor(&req, &state, &me),
                Action::ProfileConnectionTested,
                &target,
                &detail,
            )
            .await?;
            partial.render()?
        }
        Probe::Groups => {
            let search = posted.get("group_search").trim().to_owned();
            let chosen = form::chosen_groups(posted.get("groups_to_sync"));
            let (groups, error, problems) = match directory {
                Err(problems) => (Vec::new(), None, problems),
                Ok(dir) => match dir.list_groups(&search).await {
                    Ok(groups) => (groups, None, Vec::new()),
                    Err(e) => (Vec::new(), Some(e.explained()), Vec::new()),
                },
            };
            let prefix = match id {
                Some(id) => format!("/admin/profiles/{id}"),
                None => "/admin/profiles".into(),
            };
            GroupsPartial {
                groups_link: format!("{prefix}/groups"),
                search,
                groups: groups
                    .into_iter()
                    .map(|g| {
                        let on = chosen.iter().any(|c| c.eq_ignore_ascii_case(&g.name));
                        (g, on)
                    })
                    .collect(),
                error,
                problems,
            }
            .render()?
        }
    };
    if crate::web::render::is_htmx(&req) {
        return Ok(crate::web::render::html(html));
    }
    // Plain form post: the form again, with the result above it.
    let ctx = FormContext {
        kind,
        editing: loaded.as_ref().map(|(p, ..)| p),
        stored,
        dependents: loaded.as_ref().map(|(.., d)| d.clone()).unwrap_or_default(),
    };
    let partial = form_partial(
        &req,
        &state,
        ctx,
        &posted,
        FieldErrors::default(),
        Some(html),
    );
    render(&req, StatusCode::OK, partial, || {
        Chrome::new(&req, &state, Some(&me), "profiles")
    })
}

// ---------------------------------------------------------------------------------------
// Certificate download, dependent configurations, delete

pub async fn certificate(
    state: Data<AppState>,
    _admin: Admin,
    path: Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (profile, settings, _) = load(&state, path.into_inner()).await?;
    let KindSettings::Entra(s) = settings else {
        return Err(AppError::NotFound);
    };
    if s.certificate_pem.is_empty() {
        return Err(AppError::NotFound);
    }
    let file: String = profile
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"roster-{file}.pem\""),
        ))
        .body(s.certificate_pem))
}

pub async fn delete_configuration(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    path: Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, configuration) = path.into_inner();
    let (profile, ..) = load(&state, id).await?;
    let removed = state
        .db
        .run(move |c| {
            dependent_configurations::delete(c, id, configuration).map_err(AppError::from)
        })
        .await?
        .ok_or(AppError::NotFound)?;
    crate::audit::record(
        &state.db,
        &crate::web::extract::actor(&req, &state, &me),
        Action::ProfileConfigurationDeleted,
        &profile.name,
        &removed,
    )
    .await?;
    Ok(redirect(&req, &format!("/admin/profiles/{id}")))
}

#[derive(Template)]
#[template(path = "partials/admin/profile_delete_partial.html")]
pub struct DeletePartial {
    pub title: String,
    pub csrf_token: String,
    pub id: i64,
    pub name: String,
    pub schedules: i64,
    pub configurations: Vec<String>,
    pub synchronised_users: i64,
}
page!(DeletePage, "pages/admin/profile_delete.html", DeletePartial);

impl DeletePartial {
    pub fn in_use(&self) -> bool {
        self.schedules > 0 || !self.configurations.is_empty()
    }
}

pub async fn delete_confirm(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    path: Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (profile, usage) = state
        .db
        .run(move |c| {
            let profile = directory_profiles::find(c, id)?;
            let usage = directory_profiles::usage(c, id)?;
            Ok::<_, AppError>((profile, usage))
        })
        .await?;
    let profile = profile.ok_or(AppError::NotFound)?;
    let partial = DeletePartial {
        title: format!("Delete {}", profile.name),
        csrf_token: crate::web::csrf::token(&req, &state),
        id,
        name: profile.name,
        schedules: usage.schedules,
        configurations: usage.configurations,
        synchronised_users: usage.synchronised_users,
    };
    render(&req, StatusCode::OK, partial, || {
        Chrome::new(&req, &state, Some(&me), "profiles")
    })
}

pub async fn delete(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    path: Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let name = state
        .db
        .run(move |c| directory_profiles::name(c, id).map_err(AppError::from))
        .await?
        .ok_or(AppError::NotFound)?;
    let outcome = state
        .db
        .run(move |c| store::delete(c, id).map_err(|e| AppError::from(anyhow::Error::from(e))))
        .await?;
    match outcome {
        DeleteOutcome::NotFound => Err(AppError::NotFound),
        // Used meanwhile: show the page that says by what.
        DeleteOutcome::InUse(_) => Ok(redirect(&req, &format!("/admin/profiles/{id}/delete"))),
        DeleteOutcome::Deleted { users_deleted } => {
            let detail = format!("{users_deleted} synchronised users deleted");
            crate::audit::record(
                &state.db,
                &crate::web::extract::actor(&req, &state, &me),
                Action::ProfileDeleted,
                &name,
                &detail,
            )
            .await?;
            Ok(redirect(&req, "/admin/profiles"))
        }
    }
}
