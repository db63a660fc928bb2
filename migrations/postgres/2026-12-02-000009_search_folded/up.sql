-- Searches ignore accents: `search_text` is now folded (lowercase, diacritics removed, so
-- `angstrom` finds `Ångström`). Rows written before hold the unfolded text and are marked
-- 1 here; `users::refold_search_text` rewrites them right after the migrations (it needs
-- Rust's Unicode tables, which SQL lacks). Rows written from now on are folded: 2.
ALTER TABLE users ADD COLUMN search_version INTEGER NOT NULL DEFAULT 2;
UPDATE users SET search_version = 1;
