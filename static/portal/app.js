// Cuponera customer portal: plain JavaScript on the public REST API only, as a partner frontend would use it.
"use strict";

(function () {
  const API = (document.querySelector('meta[name="cuponera-api"]') || {}).content || "";
  const TEXTS = window.PORTAL_TEXTS;
  const LANGS = Object.keys(TEXTS);
  const state = { me: null, csrf: null, tenant: null, lang: "es", coupon: null, payKey: null, notice: null, started: false };

  // ---- small helpers -------------------------------------------------------------------------
  const t = (key) => TEXTS[state.lang][key] || TEXTS.es[key] || key;
  const $ = (sel) => document.querySelector(sel);

  // Build DOM nodes without innerHTML, so API text can never become markup.
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function numberLocale() {
    // The tenant's full locale (es-CO) when it speaks the chosen language, else the language with the tenant's country.
    const tenant = state.tenant;
    if (!tenant) return state.lang;
    const tenantLocale = tenant.locale.replace("_", "-");
    if (tenantLocale.includes("-") && tenantLocale.split("-")[0] === state.lang) return tenantLocale;
    return `${state.lang}-${tenant.country}`;
  }

  // Amounts arrive as exact decimal strings; Intl formats the string itself, so no float rounding creeps in.
  function money(amount, currency) {
    return new Intl.NumberFormat(numberLocale(), { style: "currency", currency }).format(amount);
  }

  function when(iso, withTime) {
    const options = withTime ? { dateStyle: "medium", timeStyle: "short" } : { dateStyle: "medium" };
    const value = withTime ? new Date(iso) : new Date(`${iso}T12:00:00`);
    const timeZone = withTime && state.tenant ? state.tenant.timezone : undefined;
    return new Intl.DateTimeFormat(numberLocale(), { ...options, timeZone }).format(value);
  }

  const statusText = (status) => t(`status_${status}`);

  // Navigate, and show `notice` once the next page has rendered (a hash change re-renders asynchronously).
  function go(hash, notice) {
    state.notice = notice || null;
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function flash(message) {
    $("#error").textContent = "";
    $("#flash").textContent = message || "";
  }

  function showError(problem) {
    $("#flash").textContent = "";
    const box = $("#error");
    box.textContent = "";
    if (!problem) return;
    box.append(h("p", {}, problem.detail || problem.title || t("error_generic")));
    if (Array.isArray(problem.errors) && problem.errors.length) {
      box.append(h("ul", {}, problem.errors.map((e) => h("li", {}, `${e.field || e.loc || ""}: ${e.message || e.msg || ""}`))));
    }
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  // One door to the API: credentials for the session cookie, the CSRF header on unsafe methods.
  async function api(method, path, body, extraHeaders) {
    const headers = { Accept: "application/json", ...(extraHeaders || {}) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    let response;
    try {
      response = await fetch(API + path, {
        method, headers, credentials: "include", body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (networkError) {
      throw new ApiError(0, { detail: t("error_network"), network: true });
    }
    if (response.status === 204) return { data: null, response };
    const type = response.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await response.json() : null;
    if (!response.ok) throw new ApiError(response.status, data || { detail: t("error_generic") });
    return { data, response };
  }

  // Run a form's action with its button disabled, so a double click cannot send twice.
  function formHandler(action) {
    return async (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      const button = form.querySelector("button[type=submit]");
      if (button.disabled) return;
      button.disabled = true;
      try {
        await action(new FormData(form), form);
      } catch (error) {
        if (error instanceof ApiError) showError(error.problem);
        else throw error;
      } finally {
        button.disabled = false;
      }
    };
  }

  function field(label, name, attrs) {
    const id = `f-${name}`;
    return h("div", { class: "field" },
      h("label", { for: id }, label),
      h("input", { id, name, ...attrs }));
  }

  function selectField(label, name, options, attrs) {
    const id = `f-${name}`;
    return h("div", { class: "field" },
      h("label", { for: id }, label),
      h("select", { id, name, ...(attrs || {}) }, options.map(([value, text]) => h("option", { value }, text))));
  }

  function render(title, ...content) {
    const view = $("#view");
    view.textContent = "";
    view.append(h("h2", { id: "view-title", tabindex: "-1" }, title), ...content);
    document.title = `${title} · ${state.tenant ? state.tenant.name : t("portal")}`;
    // Move focus to the new heading on navigation (screen readers announce it); not on first load, so Tab reaches the skip link.
    if (state.started) $("#view-title").focus();
  }

  // ---- session -------------------------------------------------------------------------------
  async function loadSession() {
    try {
      state.me = (await api("GET", "/api/v1/auth/me")).data;
      state.csrf = (await api("GET", "/api/v1/auth/csrf")).data.csrf_token;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      state.me = null;
      state.csrf = null;
    }
  }

  function renderNav() {
    const nav = $("#nav");
    nav.textContent = "";
    const links = state.me
      ? [["invoices", "nav_invoices"], ["transactions", "nav_transactions"], ["notifications", "nav_notifications"],
         ["pqrs", "nav_pqrs"], ["account", "nav_account"], ["quickpay", "nav_quickpay"]]
      : [["login", "nav_login"], ["register", "nav_register"], ["quickpay", "nav_quickpay"]];
    const list = h("ul", {}, links.map(([route, key]) => h("li", {}, h("a", { href: `#${route}` }, t(key)))));
    if (state.me) {
      list.append(h("li", {}, h("button", { type: "button", id: "logout", class: "link", onclick: logout }, t("logout"))));
    }
    nav.append(list);
  }

  async function logout() {
    try {
      await api("POST", "/api/v1/auth/logout");
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
    }
    state.me = null;
    state.csrf = null;
    renderNav();
    go("#login", t("logged_out"));
  }

  // ---- views ---------------------------------------------------------------------------------
  const views = {};

  views.login = () => render(t("login_title"),
    h("form", { id: "login-form", onsubmit: formHandler(async (data) => {
      const { data: out } = await api("POST", "/api/v1/auth/login", { email: data.get("email"), password: data.get("password") });
      state.csrf = out.csrf_token;
      state.me = (await api("GET", "/api/v1/auth/me")).data;
      renderNav();
      location.hash = "#invoices";
    }) },
      field(t("email"), "email", { type: "email", required: true, autocomplete: "username" }),
      field(t("password"), "password", { type: "password", required: true, autocomplete: "current-password" }),
      h("button", { type: "submit" }, t("login"))),
    h("p", {}, h("a", { href: "#forgot" }, t("forgot"))));

  views.register = () => render(t("register_title"),
    h("form", { id: "register-form", onsubmit: formHandler(async (data) => {
      await api("POST", "/api/v1/auth/register", Object.fromEntries(data));
      go("#login", t("registered"));
    }) },
      field(t("full_name"), "full_name", { required: true, autocomplete: "name" }),
      field(t("email"), "email", { type: "email", required: true, autocomplete: "email" }),
      field(t("password"), "password", { type: "password", required: true, autocomplete: "new-password", minlength: 8 }),
      selectField(t("national_id_type"), "national_id_type",
        [["cc", "CC"], ["nit", "NIT"], ["rut", "RUT"], ["cpf", "CPF"], ["cnpj", "CNPJ"]]),
      field(t("national_id"), "national_id", { required: true }),
      field(t("contract_number"), "contract_number", { required: true, inputmode: "numeric" }),
      h("button", { type: "submit" }, t("register"))));

  views.forgot = () => render(t("forgot_title"),
    h("form", { id: "forgot-form", onsubmit: formHandler(async (data) => {
      await api("POST", "/api/v1/auth/password-reset", { email: data.get("email") });
      flash(t("reset_sent"));
    }) },
      field(t("email"), "email", { type: "email", required: true, autocomplete: "email" }),
      h("button", { type: "submit" }, t("send_link"))));

  views.reset = () => {
    const token = new URLSearchParams(location.search).get("token") || "";
    render(t("reset_title"),
      h("form", { id: "reset-form", onsubmit: formHandler(async (data) => {
        await api("POST", "/api/v1/auth/password-reset/confirm", { token, new_password: data.get("new_password") });
        history.replaceState(null, "", "/portal/#login");  // the token is spent; keep it out of the address bar
        views.login();
        flash(t("reset_done"));
      }) },
        field(t("new_password"), "new_password", { type: "password", required: true, autocomplete: "new-password", minlength: 8 }),
        h("button", { type: "submit" }, t("save_password"))));
  };

  views.account = async () => {
    const { data: profile } = await api("GET", "/api/v1/me");
    const pending = h("p", { id: "pending-email" }, profile.pending_email ? `${t("email_pending")} ${profile.pending_email}` : "");
    const languages = [["es", "Español"], ["en", "English"], ["pt", "Português"]];
    render(t("nav_account"),
      h("h3", {}, t("profile_title")),
      h("form", { id: "profile-form", onsubmit: formHandler(async (data) => {
        // Send only what changed: an unchanged email must not mail a confirmation link.
        const wanted = {
          email: data.get("email").trim(), phone: data.get("phone").trim() || null,
          billing_address: data.get("billing_address").trim(), locale: data.get("locale"),
          paperless: data.get("paperless") === "on",
        };
        const changes = Object.fromEntries(Object.entries(wanted).filter(([key, value]) => value !== (profile[key] ?? null)));
        if (!Object.keys(changes).length) { flash(t("profile_saved")); return; }
        const { data: saved } = await api("PATCH", "/api/v1/me", changes);
        Object.assign(profile, saved);
        pending.textContent = saved.pending_email ? `${t("email_pending")} ${saved.pending_email}` : "";
        flash(saved.pending_email && changes.email ? `${t("email_pending")} ${saved.pending_email}` : t("profile_saved"));
      }) },
        field(t("email"), "email", { type: "email", required: true, autocomplete: "email", value: profile.email }),
        pending,
        field(t("phone"), "phone", { type: "tel", autocomplete: "tel", value: profile.phone || "" }),
        field(t("billing_address"), "billing_address", { autocomplete: "street-address", value: profile.billing_address }),
        selectField(t("notice_language"), "locale", languages),
        h("div", { class: "field checkbox" },
          h("input", { type: "checkbox", id: "f-paperless", name: "paperless", checked: profile.paperless }),
          h("label", { for: "f-paperless" }, t("paperless"))),
        h("button", { type: "submit" }, t("save_profile"))),
      h("h3", {}, t("account_title")),
      h("form", { id: "password-form", onsubmit: formHandler(async (data, form) => {
        await api("POST", "/api/v1/auth/password", Object.fromEntries(data));
        form.reset();
        flash(t("password_changed"));
      }) },
        field(t("current_password"), "current_password", { type: "password", required: true, autocomplete: "current-password" }),
        field(t("new_password"), "new_password", { type: "password", required: true, autocomplete: "new-password", minlength: 8 }),
        h("button", { type: "submit" }, t("change_password"))));
    $("#f-locale").value = profile.locale;
  };

  views.invoices = async () => {
    const [contracts, invoices] = await Promise.all([
      api("GET", "/api/v1/me/contracts?limit=200"), api("GET", "/api/v1/me/invoices?limit=200"),
    ]);
    const contractList = h("ul", { class: "cards" }, contracts.data.items.map((c) =>
      h("li", { class: "card" }, h("strong", {}, c.contract_number), ` · ${t(`service_${c.service}`)} · ${c.supply_address} · `,
        h("span", { class: `badge ${c.status}` }, statusText(c.status) || c.status))));
    const payable = (inv) => inv.status === "issued" || inv.status === "overdue";
    // data-label lets a phone show each row as a card with its own captions (see portal.css).
    const cell = (key, content, attrs) => h("td", { "data-label": t(key), ...(attrs || {}) }, content);
    const rows = invoices.data.items.map((inv) => h("tr", { "data-invoice": inv.number },
      cell("select", payable(inv)
        ? h("input", { type: "checkbox", name: "invoice_ids", value: inv.id, "aria-label": `${t("select")} ${inv.number}` })
        : ""),
      cell("number", inv.number), cell("contract_number", inv.contract_number), cell("period", inv.period),
      cell("due_on", when(inv.due_on)),
      cell("status", h("span", { class: `badge ${inv.status}` }, statusText(inv.status))),
      cell("amount_due", money(inv.amount_due, inv.currency), { class: "num" }),
      cell("pdf", h("a", { href: `${API}/api/v1/me/invoices/${inv.id}/pdf`, download: `${inv.number}.pdf` }, t("pdf")))));
    const table = rows.length
      ? h("div", { class: "scroll" }, h("table", { class: "stack" },
          h("thead", {}, h("tr", {}, ["select", "number", "contract_number", "period", "due_on", "status", "amount_due", "pdf"]
            .map((k) => h("th", { scope: "col" }, t(k))))),
          h("tbody", {}, rows)))
      : h("p", {}, t("no_invoices"));
    render(t("nav_invoices"),
      h("h3", {}, t("contracts")), contractList,
      h("h3", {}, t("invoices")),
      h("form", { id: "coupon-form", onsubmit: formHandler(async (data) => {
        const ids = data.getAll("invoice_ids").map(Number);
        if (!ids.length) { showError({ detail: t("select_one") }); return; }
        const { data: coupon } = await api("POST", "/api/v1/coupons", { invoice_ids: ids });
        state.coupon = coupon;
        location.hash = `#coupon/${encodeURIComponent(coupon.reference)}`;
      }) }, table, rows.length ? h("button", { type: "submit" }, t("make_coupon")) : ""));
  };

  views.quickpay = () => {
    const result = h("div", { id: "lookup-result" });
    render(t("quickpay_title"),
      h("form", { id: "lookup-form", onsubmit: formHandler(async (data) => {
        const number = data.get("contract_number").trim();
        const { data: found } = await api("GET", `/api/v1/invoice-lookup?${new URLSearchParams({ contract_number: number })}`);
        result.textContent = "";
        if (!found.invoices.length) { result.append(h("p", {}, t("nothing_due"))); return; }
        result.append(
          h("p", {}, `${t("holder")}: `, h("strong", {}, found.holder_name)),
          h("ul", {}, found.invoices.map((inv) => h("li", {},
            `${inv.number} · ${inv.period} · ${statusText(inv.status)} · ${money(inv.amount_due, found.currency)}`))),
          h("p", {}, `${t("total_due")}: `, h("strong", { id: "total-due" }, money(found.total_due, found.currency))),
          h("form", { id: "quickpay-coupon", onsubmit: formHandler(async () => {
            const { data: coupon } = await api("POST", "/api/v1/coupons", { contract_number: number });
            state.coupon = coupon;
            location.hash = `#coupon/${encodeURIComponent(coupon.reference)}`;
          }) }, h("button", { type: "submit" }, t("pay_all"))));
      }) },
        field(t("contract_number"), "contract_number", { required: true, inputmode: "numeric" }),
        h("button", { type: "submit" }, t("lookup"))),
      result);
  };

  views.coupon = async (reference) => {
    const coupon = state.coupon && state.coupon.reference === reference
      ? state.coupon : (await api("GET", `/api/v1/coupons/${encodeURIComponent(reference)}`)).data;
    state.coupon = coupon;
    state.payKey = null;
    const outcome = h("div", { id: "payment-result", role: "status", "aria-live": "polite" });
    const base = `${API}/api/v1/coupons/${encodeURIComponent(coupon.reference)}`;
    const tokens = ["tok_approved", "tok_declined", "tok_pending"];
    render(t("coupon_title"),
      h("dl", { class: "facts" },
        h("dt", {}, t("reference")), h("dd", { id: "coupon-reference" }, coupon.reference),
        h("dt", {}, t("holder")), h("dd", {}, coupon.holder_name),
        h("dt", {}, t("amount")), h("dd", { id: "coupon-amount" }, money(coupon.amount, coupon.currency)),
        h("dt", {}, t("expires_at")), h("dd", {}, when(coupon.expires_at, true)),
        h("dt", {}, t("status")), h("dd", { id: "coupon-status" }, statusText(coupon.status))),
      h("figure", { class: "barcode" },
        h("img", { src: `${base}/barcode.svg`, alt: `${t("barcode_alt")} ${coupon.barcode.human_readable}` }),
        h("figcaption", {}, coupon.barcode.human_readable)),
      h("p", {}, h("a", { href: `${base}/pdf`, download: `${coupon.reference}.pdf`, id: "coupon-pdf" }, t("coupon_pdf"))),
      coupon.status === "active" ? h("form", { id: "pay-form", onsubmit: formHandler(async (data) => {
        // One key per attempt: kept if the network fails (a retry is the same attempt), new after an answer.
        state.payKey = state.payKey || crypto.randomUUID();
        outcome.textContent = t("paying");
        let result;
        try {
          result = await api("POST", "/api/v1/payments",
            { coupon_reference: coupon.reference, card_token: data.get("card_token") },
            { "Idempotency-Key": state.payKey });
        } catch (error) {
          outcome.textContent = "";
          if (!(error instanceof ApiError && error.status === 0)) state.payKey = null;
          throw error;
        }
        state.payKey = null;
        const payment = result.data;
        const replayed = result.response.headers.get("Idempotent-Replayed") === "true";
        outcome.textContent = "";
        outcome.className = `outcome ${payment.status}`;
        outcome.append(h("strong", { "data-status": payment.status },
          { approved: t("paid_ok"), declined: t("paid_declined"), pending: t("paid_pending") }[payment.status]),
          ` ${money(payment.amount, payment.currency)} · #${payment.id}`, replayed ? ` ${t("replayed")}` : "");
        if (payment.status === "approved") {
          $("#coupon-status").textContent = statusText("paid");
          document.getElementById("pay-form").remove();
        }
      }) },
        h("fieldset", {}, h("legend", {}, t("card")),
          tokens.map((token, i) => h("label", { class: "radio" },
            h("input", { type: "radio", name: "card_token", value: token, checked: i === 0 }), t(token)))),
        h("button", { type: "submit", id: "pay" }, t("pay"))) : "",
      outcome);
  };

  views.transactions = async () => {
    const { data } = await api("GET", "/api/v1/me/transactions?limit=100");
    render(t("transactions_title"), data.items.length
      ? h("div", { class: "scroll" }, h("table", { id: "transactions" },
          h("thead", {}, h("tr", {}, ["date", "kind", "reference", "contract_number", "amount"].map((k) => h("th", { scope: "col" }, t(k))))),
          h("tbody", {}, data.items.map((tx) => h("tr", { "data-kind": tx.kind },
            h("td", {}, when(tx.created_at, true)), h("td", {}, t(`kind_${tx.kind}`)), h("td", {}, tx.reference),
            h("td", {}, tx.contract_numbers.join(", ")), h("td", { class: "num" }, money(tx.amount, tx.currency)))))))
      : h("p", {}, t("no_transactions")));
  };

  views.notifications = async () => {
    const { data } = await api("GET", "/api/v1/me/notifications?limit=100");
    render(t("notifications_title"), data.items.length
      ? h("ul", { class: "cards", id: "notifications" }, data.items.map((n) => h("li", { class: `card ${n.read ? "read" : "unread"}` },
          h("span", { class: "badge" }, n.read ? t("read") : t("unread")), " ", h("strong", {}, n.subject),
          h("br"), h("small", {}, when(n.created_at, true)),
          n.read ? "" : h("button", { type: "button", class: "secondary", onclick: async () => {
            try { await api("POST", `/api/v1/me/notifications/${n.id}/read`); } catch (e) { showError(e.problem); return; }
            await views.notifications();
          } }, t("mark_read")))))
      : h("p", {}, t("no_notifications")));
  };

  views.pqrs = async () => {
    const [pqrs, contracts] = await Promise.all([api("GET", "/api/v1/pqrs?limit=100"), api("GET", "/api/v1/me/contracts?limit=200")]);
    const types = ["petition", "complaint", "claim", "appeal"];
    render(t("pqrs_title"),
      h("form", { id: "pqr-form", onsubmit: formHandler(async (data) => {
        const body = { type: data.get("type"), subject: data.get("subject"), description: data.get("description") };
        if (data.get("contract_id")) body.contract_id = Number(data.get("contract_id"));
        const { data: pqr } = await api("POST", "/api/v1/pqrs", body);
        go(`#pqr/${pqr.id}`, `${t("filed")} ${pqr.filing_number}`);
      }) },
        selectField(t("type"), "type", types.map((k) => [k, t(`type_${k}`)])),
        selectField(t("contract_optional"), "contract_id",
          [["", t("none")], ...contracts.data.items.map((c) => [String(c.id), c.contract_number])]),
        field(t("subject"), "subject", { required: true, maxlength: 200 }),
        h("div", { class: "field" }, h("label", { for: "f-description" }, t("description")),
          h("textarea", { id: "f-description", name: "description", required: true, rows: 4 })),
        h("button", { type: "submit" }, t("file_pqr"))),
      pqrs.data.items.length
        ? h("ul", { class: "cards", id: "pqrs" }, pqrs.data.items.map((p) => h("li", { class: "card" },
            h("a", { href: `#pqr/${p.id}` }, p.filing_number), ` · ${t(`type_${p.type}`)} · ${p.subject} · `,
            h("span", { class: `badge ${p.status}` }, statusText(p.status)))))
        : h("p", {}, t("no_pqrs")));
  };

  views.pqr = async (id) => {
    const { data: p } = await api("GET", `/api/v1/pqrs/${encodeURIComponent(id)}`);
    render(`${t("filing_number")} ${p.filing_number}`,
      h("dl", { class: "facts" },
        h("dt", {}, t("type")), h("dd", {}, t(`type_${p.type}`)),
        h("dt", {}, t("status")), h("dd", { id: "pqr-status" }, statusText(p.status)),
        h("dt", {}, t("subject")), h("dd", {}, p.subject),
        h("dt", {}, t("description")), h("dd", {}, p.description),
        h("dt", {}, t("due_on")), h("dd", {}, when(p.due_on)),
        h("dt", {}, t("answer")), h("dd", { id: "pqr-answer" }, p.answer || t("no_answer"))),
      h("p", {}, h("a", { href: "#pqrs" }, t("nav_pqrs"))));
  };

  const PRIVATE = new Set(["invoices", "transactions", "notifications", "pqrs", "pqr", "account"]);

  async function route() {
    const [name, arg] = location.hash.replace(/^#/, "").split("/");
    let view = name || (state.me ? "invoices" : "login");
    if (location.pathname === "/reset-password") view = "reset";
    if (!views[view]) view = "login";
    let notice = state.notice;
    state.notice = null;
    if (PRIVATE.has(view) && !state.me) {
      view = "login";
      notice = t("login_needed");
    }
    showError(null);
    try {
      await views[view](arg && decodeURIComponent(arg));
      if (notice) flash(notice);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 401) {
        state.me = null;
        state.csrf = null;
        renderNav();
        views.login();
      }
      showError(error.problem);
    }
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    $("#lang").value = state.lang;
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    if (state.tenant) $("#tenant-name").textContent = `${state.tenant.name} · ${t("portal")}`;
  }

  function chooseLanguage() {
    const saved = localStorage.getItem("cuponera.lang");
    if (LANGS.includes(saved)) return saved;
    for (const tag of navigator.languages || [navigator.language]) {
      const base = (tag || "").slice(0, 2).toLowerCase();
      if (LANGS.includes(base)) return base;
    }
    const tenantLang = state.tenant ? state.tenant.locale.slice(0, 2).toLowerCase() : "es";
    return LANGS.includes(tenantLang) ? tenantLang : "es";
  }

  async function start() {
    try {
      state.tenant = (await api("GET", "/api/v1/tenant")).data;
    } catch (error) {
      state.tenant = null;
    }
    state.lang = chooseLanguage();
    $("#lang").addEventListener("change", async (event) => {
      state.lang = event.target.value;
      localStorage.setItem("cuponera.lang", state.lang);
      applyLanguage();
      renderNav();
      await route();
    });
    applyLanguage();
    await confirmEmailFromLink();
    await loadSession();
    renderNav();
    window.addEventListener("hashchange", route);
    await route();
    state.started = true;
    document.body.dataset.ready = "true";
  }

  // The link mailed to a new address: /portal/?confirm_email=TOKEN. Confirm it, then drop the token from the address bar.
  async function confirmEmailFromLink() {
    const params = new URLSearchParams(location.search);
    const token = params.get("confirm_email");
    if (!token) return;
    history.replaceState(null, "", location.pathname + location.hash);
    try {
      await api("POST", "/api/v1/me/email-confirmation", { token });
      state.notice = t("email_confirmed");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      state.notice = t("email_link_invalid");
    }
  }

  start();
})();
