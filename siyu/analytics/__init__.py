"""Analytics: metrics, funnels, retention, paths, attribution/ROI, anomalies, experiments and
the weekly report, each compiled to set-at-a-time Ibis over the person-resolved events."""
