"""The demo fleet's services: their migration folders, what each env had deployed when, and how each planted
failure reads. Data only; sample_logs/generate.py runs the fleet."""
from __future__ import annotations

from tests.kit.gofmt import utc_ns
from tests.kit.migrate import Failure, Migration

# version -> (name, typical own ms up in prod, typical own ms down, has a down file, data-heavy)
ORDERS = {
    1: ("create_orders_table", 9.5, 4.1, True, False), 2: ("create_order_items_table", 11.2, 3.8, True, False),
    3: ("add_orders_customer_id_index", 38.0, 6.0, True, False), 4: ("create_payments_table", 10.4, 3.9, True, False),
    5: ("add_orders_currency", 7.2, 0.0, False, False),  # no .down.sql: 5/d <empty>
    6: ("create_refunds_table", 9.8, 3.6, True, False), 7: ("add_order_items_sku_index", 45.0, 5.2, True, False),
    8: ("add_orders_status_check", 3.1, 2.4, True, False), 9: ("create_order_events_table", 12.6, 4.4, True, False),
    10: ("add_payments_provider_ref", 5.6, 3.3, True, False), 11: ("backfill_payment_status", 1850.0, 6.5, True, True),
    12: ("add_orders_updated_at", 6.1, 3.0, True, False), 13: ("create_carts_table", 10.9, 4.0, True, False),
    14: ("add_order_notes", 6.4, 3.2, True, False), 15: ("backfill_order_totals", 11800.0, 9.0, True, True),
    16: ("add_shipment_tracking", 14.3, 5.1, True, False), 17: ("add_order_status_history", 41.0, 4.8, True, False),
    18: ("add_orders_region_index", 820.0, 7.5, True, True),
}
BILLING = {
    1: ("create_accounts_table", 8.0, 3.0, True, False), 2: ("create_invoices_table", 10.0, 3.5, True, False),
    3: ("create_invoice_lines_table", 10.5, 3.5, True, False),
    4: ("add_invoices_account_index", 20.0, 4.0, True, False),
    5: ("create_payments_table", 9.0, 3.0, True, False), 6: ("add_invoices_due_at", 5.0, 3.0, True, False),
    7: ("create_credit_notes_table", 9.0, 3.0, True, False), 8: ("add_payments_method", 5.0, 3.0, True, False),
    9: ("create_tax_rates_table", 8.0, 3.0, True, False), 10: ("add_invoice_lines_tax_rate_id", 6.0, 3.0, True, False),
    11: ("create_dunning_events_table", 9.0, 3.0, True, False),
    12: ("add_accounts_billing_email", 5.0, 3.0, True, False),
    13: ("create_subscriptions_table", 10.0, 3.0, True, False),
    14: ("add_subscriptions_status_index", 18.0, 3.0, True, False),
    15: ("create_usage_records_table", 10.0, 3.0, True, False),
    16: ("add_usage_records_period_index", 25.0, 3.0, True, False), 17: ("create_coupons_table", 9.0, 3.0, True, False),
    18: ("add_invoices_coupon_id", 6.0, 3.0, True, False), 19: ("create_refunds_table", 9.0, 3.0, True, False),
    20: ("add_payments_refunded_cents", 5.0, 3.0, True, False),
    21: ("create_invoice_events_table", 11.0, 3.0, True, False), 22: ("add_invoice_currency", 15.2, 4.2, True, False),
    23: ("backfill_invoice_totals", 2100.0, 12.0, True, True),
}
IDENTITY = {1: ("create_users_table", 9.0, 3.0, True, False), 2: ("create_sessions_table", 11.0, 3.0, True, False),
            3: ("add_mfa_secrets", 38.5, 4.0, True, False), 4: ("add_login_attempts", 24.0, 4.0, True, False),
            5: ("add_webauthn_credentials", 57.0, 5.0, True, False)}
CATALOG = {
    1: ("create_products_table", 9.0, 3.0, True, False), 2: ("create_categories_table", 8.0, 3.0, True, False),
    3: ("add_products_category_id", 6.0, 3.0, True, False), 4: ("create_product_images_table", 9.0, 3.0, True, False),
    5: ("add_products_sku_unique", 42.0, 4.0, True, False), 6: ("create_inventory_table", 10.0, 3.0, True, False),
    7: ("add_inventory_warehouse_id", 6.0, 3.0, True, False),
    8: ("create_product_attributes_table", 11.0, 3.0, True, False),
    9: ("add_search_vectors", 2400.0, 118.0, True, True), 10: ("add_product_slugs", 240.0, 6.0, True, True),
    11: ("add_price_history", 31.0, 4.5, True, False),
}
SOURCES = {svc: {v: Migration(*m) for v, m in sorted(folder.items())}
           for svc, folder in [("orders", ORDERS), ("billing", BILLING), ("identity", IDENTITY), ("catalog", CATALOG)]}
# Data-heavy scripts scale with the data volume of the env; light ones hardly.
SCALE = {True: {"dev": 0.03, "staging": 0.35, "prod": 1.0}, False: {"dev": 0.75, "staging": 0.9, "prod": 1.0}}

SQL = {
    "orders16_broken": (
        "ALTER TABLE orders\n"
        "    ADD COLUMN carrier         TEXT,\n"
        "    ADD COLUMN tracking_number TEXT\n"
        "    ADD COLUMN shipped_at      TIMESTAMPTZ;\n"
        "CREATE INDEX idx_orders_tracking_number ON orders (tracking_number);\n"
    ),
    "billing23": (
        "UPDATE invoices i\n"
        "SET    total_cents = s.total_cents,\n"
        "       updated_at  = now()\n"
        "FROM  (SELECT invoice_id, SUM(quantity * unit_price_cents) AS total_cents\n"
        "       FROM invoice_lines\n"
        "       GROUP BY invoice_id) s\n"
        "WHERE  s.invoice_id = i.id\n"
        "  AND  i.total_cents IS DISTINCT FROM s.total_cents;\n"
    ),
    "identity3": (
        "CREATE TABLE mfa_secrets (\n"
        "    user_id     BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,\n"
        "    secret      BYTEA NOT NULL,\n"
        "    recovery    TEXT[] NOT NULL DEFAULT '{}',\n"
        "    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()\n"
        ");\n"
    ),
    "identity4": (
        "CREATE TABLE login_attempts (\n"
        "    id           BIGSERIAL PRIMARY KEY,\n"
        "    user_id      BIGINT NOT NULL REFERENCES users (id),\n"
        "    ip           INET NOT NULL,\n"
        "    succeeded    BOOLEAN NOT NULL,\n"
        "    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now()\n"
        ");\n"
        "ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;\n"
    ),
}
FAILURES = {
    "syntax16": Failure('syntax error at or near "ADD" (column 5)', 4, SQL["orders16_broken"],
                        'syntax error at or near "ADD"', (0.8, 1.6), "syntax_error"),
    "stmt_timeout23": Failure("canceling statement due to statement timeout", 0, SQL["billing23"],
                              "canceling statement due to statement timeout", (90000.0, 90004.0), "statement_timeout"),
    "lock_timeout4": Failure("canceling statement due to lock timeout", 0, SQL["identity4"],
                             "canceling statement due to lock timeout", (5000.0, 5003.0), "lock_conflict"),
    "exists3": Failure('relation "mfa_secrets" already exists', 0, SQL["identity3"],
                       'relation "mfa_secrets" already exists', (1.2, 2.4), "already_exists"),
}

# The schema version of every database when the data starts.
START_VERSIONS = {
    **{("orders", e, "orders"): 13 for e in ("dev", "staging", "prod")},
    **{("catalog", e, "catalog"): 8 for e in ("dev", "staging", "prod")},
    **{("identity", e, "identity"): 2 for e in ("dev", "staging", "prod")},
    ("billing", "dev", "billing"): 21,
    **{("billing", "staging", f"tenant_{i:03d}"): 21 for i in (1, 2)},
    **{("billing", "prod", f"tenant_{i:03d}"): 21 for i in range(1, 9)},
}
T = utc_ns
# Heads deployed per (service, env): (from, head). Catalog prod: 9 shipped 11-02 and reverted with the rollback
# on 11-03 (head back to 8), 9+10 re-shipped 11-11, 11 hot-fixed straight to prod 11-13 (staging never got it).
HEADS = {
    ("orders", "dev"): [(0, 13), (T("2026-10-26 09:40"), 15), (T("2026-11-02 10:19"), 16),
                        (T("2026-11-04 14:59"), 17), (T("2026-11-09 10:09"), 18)],
    ("orders", "staging"): [(0, 13), (T("2026-10-27 10:14"), 15), (T("2026-11-03 10:04"), 16),
                            (T("2026-11-05 09:29"), 17), (T("2026-11-10 10:39"), 18)],
    ("orders", "prod"): [(0, 13), (T("2026-10-29 14:04"), 15), (T("2026-11-04 10:29"), 16),
                         (T("2026-11-06 10:14"), 17), (T("2026-11-12 14:29"), 18)],
    ("catalog", "dev"): [(0, 8), (T("2026-10-26 11:04"), 9), (T("2026-11-05 10:29"), 10), (T("2026-11-10 15:19"), 11)],
    ("catalog", "staging"): [(0, 8), (T("2026-10-28 13:59"), 9), (T("2026-11-10 13:57"), 10)],
    ("catalog", "prod"): [(0, 8), (T("2026-11-02 11:19"), 9), (T("2026-11-03 15:39"), 8),
                          (T("2026-11-11 11:29"), 10), (T("2026-11-13 16:04"), 11)],
    ("identity", "dev"): [(0, 2), (T("2026-10-27 09:59"), 4), (T("2026-11-09 10:59"), 5)],
    ("identity", "staging"): [(0, 2), (T("2026-10-28 14:09"), 4), (T("2026-11-10 11:29"), 5)],
    ("identity", "prod"): [(0, 2), (T("2026-11-02 13:29"), 4), (T("2026-11-12 12:59"), 5)],
}
K8S_NODES = {"dev": ["ip-10-10-1-23.ec2.internal", "ip-10-10-2-41.ec2.internal"],
             "staging": ["ip-10-20-1-17.ec2.internal", "ip-10-20-3-88.ec2.internal"],
             "prod": ["ip-10-0-3-17.ec2.internal", "ip-10-0-4-112.ec2.internal", "ip-10-0-5-9.ec2.internal"]}
