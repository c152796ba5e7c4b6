//! Scrape target (placeholder).
