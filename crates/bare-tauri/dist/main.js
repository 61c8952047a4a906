// Marks the page interactive the way Exam Bank Desktop's first screen does, so
// `cargo bench --bench launch` reads both apps alike.
document.documentElement.dataset.pageStartAt = String(Math.round(performance.timeOrigin));
document.documentElement.dataset.interactiveAt = String(Date.now());
