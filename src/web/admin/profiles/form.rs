//! The profile form: choosing the type, the create and edit forms with their type-specific
//! fields, and saving (`services::profiles`).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Path, Query};
use askama::Template;
use serde::Deserialize;

use crate::db::ids::ProfileId;
use crate::db::models::dependent_configurations::DependentConfiguration;
use crate::db::models::directory_profiles::{DirectoryProfile, ProfileKind};
use crate::error::AppError;
use crate::page;
use crate::profiles::certificate::{self, CertificateInfo};
use crate::profiles::fields::{self, Input};
use crate::profiles::form::{self, Posted};
use crate::profiles::{KindSettings, SecretSlot};
use crate::services::profiles::{self as profiles_service, Saved};
use crate::validation::FieldErrors;
use crate::web::extract::Admin;
use crate::web::page::Page;
use crate::web::render::{Choice, fragment};

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
    /// An example value for an empty field.
    pub placeholder: &'static str,
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
    /// (section, its fields).
    pub sections: Vec<(&'static str, Vec<FieldView>)>,
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

#[derive(Template)]
#[template(path = "partials/admin/profile_form_partial.html")]
pub struct ProfileFormPartial {
    pub title: String,
    pub csrf_token: String,
    /// The profile being edited; `None` on create.
    pub editing: Option<ProfileId>,
    pub form_action: String,
    pub kinds: Vec<Choice>,
    pub kind_label: &'static str,
    pub name: String,
    pub delete_users: bool,
    pub delete_groups: bool,
    pub mfa_by_default: bool,
    pub privileges: Vec<Choice>,
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
    /// (value, label, one line about it).
    pub kinds: Vec<(&'static str, &'static str, &'static str)>,
}
page!(
    ChooseKindPage,
    "pages/admin/profile_choose.html",
    ChooseKindPartial
);

/// Everything the form needs besides the posted values.
pub(super) struct FormContext<'a> {
    pub kind: ProfileKind,
    pub editing: Option<&'a DirectoryProfile>,
    pub stored: Option<&'a KindSettings>,
    pub dependents: Vec<DependentConfiguration>,
}

pub(super) fn kind_choices(selected: Option<ProfileKind>) -> Vec<Choice> {
    ProfileKind::ALL
        .into_iter()
        .map(|k| Choice {
            value: k.as_str(),
            label: k.label(),
            chosen: Some(k) == selected,
        })
        .collect()
}

pub(super) fn kind_fields(
    page: &Page<Admin>,
    ctx: &FormContext<'_>,
    values: &Posted,
    errors: &FieldErrors,
) -> KindFieldsPartial {
    let kind = ctx.kind;
    let stored = ctx.stored;
    let mut views = fields::for_kind(kind)
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
                placeholder: fields::example_of(spec.name),
            }
        })
        .collect::<Vec<FieldView>>();
    // The fields in the form's sections, in order; empty sections are left out.
    let sections: Vec<(&'static str, Vec<FieldView>)> = fields::SECTIONS
        .iter()
        .map(|section| {
            let (inside, rest): (Vec<FieldView>, Vec<FieldView>) = views
                .drain(..)
                .partition(|f| fields::section_of(f.name) == *section);
            views = rest;
            (*section, inside)
        })
        .filter(|(_, inside)| !inside.is_empty())
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
        sections,
        groups_label: fields::groups_label(kind),
        groups_to_sync: values.get("groups_to_sync").to_owned(),
        has_connector: fields::has_connector(kind),
        test_link: format!("{prefix}/test-connection"),
        groups_link: format!("{prefix}/groups"),
        entra,
        google,
        redirect_uri: (has_redirect && !slug.is_empty())
            .then(|| crate::profiles::redirect_uri(&page.base_url(), &slug)),
        redirect_slug: slug,
        offer_dependents: has_redirect && ctx.editing.is_none(),
        create_dependents: values.checked("create_dependents"),
        errors: errors.clone(),
    }
}

pub(super) fn form_partial(
    page: &Page<Admin>,
    ctx: FormContext<'_>,
    values: &Posted,
    errors: FieldErrors,
    inline_result: Option<String>,
) -> ProfileFormPartial {
    let title = match ctx.editing {
        Some(p) => format!("Edit {}", p.name),
        None => format!("New {} profile", ctx.kind.label()),
    };
    let kind_fields = kind_fields(page, &ctx, values, &errors);
    ProfileFormPartial {
        title,
        csrf_token: page.csrf_token.clone(),
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
            .map(|p| Choice {
                value: p.as_str(),
                label: p.label(),
                chosen: values.privileges.contains(&p),
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
    page: Page<Admin>,
    query: Query<KindQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(kind) = ProfileKind::parse(&query.kind) else {
        let partial = ChooseKindPartial {
            title: "New directory profile".into(),
            kinds: ProfileKind::ALL
                .into_iter()
                .map(|k| (k.as_str(), k.label(), k.description()))
                .collect(),
        };
        return page.render(StatusCode::OK, partial, "profiles");
    };
    let values = form::values_of(kind, &KindSettings::defaults(kind), None);
    let ctx = FormContext {
        kind,
        editing: None,
        stored: None,
        dependents: Vec::new(),
    };
    let partial = form_partial(&page, ctx, &values, FieldErrors::default(), None);
    page.render(StatusCode::OK, partial, "profiles")
}

/// The type-specific fields of a new profile with their defaults (the type chooser swaps
/// them in; what was typed in the old type's fields is dropped).
pub async fn new_kind_fields(
    page: Page<Admin>,
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
    fragment(kind_fields(&page, &ctx, &values, &FieldErrors::default()))
}

pub async fn edit_form(page: Page<Admin>, path: Path<ProfileId>) -> Result<HttpResponse, AppError> {
    let loaded = profiles_service::load(&page.state, path.into_inner()).await?;
    let kind = loaded.kind()?;
    let values = form::values_of(kind, &loaded.settings, Some(&loaded.profile));
    let ctx = FormContext {
        kind,
        editing: Some(&loaded.profile),
        stored: Some(&loaded.settings),
        dependents: loaded.dependents.clone(),
    };
    let partial = form_partial(&page, ctx, &values, FieldErrors::default(), None);
    page.render(StatusCode::OK, partial, "profiles")
}

pub async fn create(page: Page<Admin>, body: Bytes) -> Result<HttpResponse, AppError> {
    let posted = Posted::parse(&body);
    let kind = ProfileKind::parse(posted.get("kind"))
        .ok_or_else(|| AppError::BadRequest("Choose one of the six directory types.".into()))?;
    let ctx = FormContext {
        kind,
        editing: None,
        stored: None,
        dependents: Vec::new(),
    };
    match profiles_service::create(&page.state, &page.actor(), kind, &posted).await? {
        Saved::Saved(id) => Ok(page.redirect_with(
            &format!("/admin/profiles/{id}"),
            &format!("Profile {} created.", posted.get("name").trim()),
        )),
        Saved::Invalid(errors) => invalid(&page, ctx, &posted, errors),
    }
}

fn invalid(
    page: &Page<Admin>,
    ctx: FormContext<'_>,
    posted: &Posted,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let partial = form_partial(page, ctx, posted, errors, None);
    page.render(StatusCode::UNPROCESSABLE_ENTITY, partial, "profiles")
}

pub async fn update(
    page: Page<Admin>,
    path: Path<ProfileId>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let loaded = profiles_service::load(&page.state, path.into_inner()).await?;
    let posted = Posted::parse(&body);
    let me_actor = page.actor();
    match profiles_service::update(&page.state, &me_actor, &loaded, &posted).await? {
        Saved::Saved(id) => Ok(page.redirect_with(
            &format!("/admin/profiles/{id}"),
            &format!("Profile {} saved.", posted.get("name").trim()),
        )),
        Saved::Invalid(errors) => {
            let ctx = FormContext {
                kind: loaded.kind()?,
                editing: Some(&loaded.profile),
                stored: Some(&loaded.settings),
                dependents: loaded.dependents.clone(),
            };
            invalid(&page, ctx, &posted, errors)
        }
    }
}
