"""Cross-cutting pieces every module may import: settings, errors, clock, ids, logging, i18n."""
