"""HTTP routes: one blueprint per entity; BLUEPRINTS is the order create_app registers them in."""

from __future__ import annotations

from quart import Blueprint

from routes import (
    auth_routes,
    billing_run_routes,
    collection_routes,
    contract_routes,
    coupon_routes,
    customer_routes,
    health_routes,
    invoice_routes,
    lookup_routes,
    me_account_routes,
    me_balance_routes,
    meter_routes,
    notification_routes,
    password_reset_routes,
    payment_routes,
    portal_routes,
    pqr_routes,
    reading_routes,
    registration_routes,
    report_routes,
    tariff_routes,
    tenant_routes,
    transaction_routes,
    user_routes,
)

BLUEPRINTS: tuple[Blueprint, ...] = (
    health_routes.bp,
    tenant_routes.bp,
    auth_routes.bp,
    registration_routes.bp,
    customer_routes.bp,
    contract_routes.bp,
    meter_routes.bp,
    reading_routes.bp,
    me_account_routes.bp,
    me_balance_routes.bp,
    password_reset_routes.bp,
    notification_routes.bp,
    pqr_routes.bp,
    lookup_routes.bp,
    coupon_routes.bp,
    payment_routes.bp,
    collection_routes.bp,
    transaction_routes.bp,
    tariff_routes.bp,
    billing_run_routes.bp,
    invoice_routes.bp,
    portal_routes.bp,
    user_routes.bp,
    report_routes.bp,
)
