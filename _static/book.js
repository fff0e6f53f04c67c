/* Two small fixes to the pinned theme (sphinx-book-theme 1.3.0 on pydata-sphinx-theme 0.17.1).
 * No release of sphinx-book-theme that fixes the first one installs next to Jupyter Book 1
 * (1.4.0 needs Sphinx >= 8.2, Jupyter Book 1 needs Sphinx 7), so both are local fixes,
 * checked in checks/test_rendered_book.py at 390, 900 and 1280 px. */

/* 1. The menu and page-contents buttons.  pydata-sphinx-theme binds its click handlers to
 * document.querySelector(".primary-toggle") and (".secondary-toggle"): the first button of
 * each kind in the page, which sits in the header bar that sphinx-book-theme hides.  The
 * buttons a reader sees (in the article header) get no handler and open nothing.  A click
 * on a visible button is forwarded to the bound one, so the theme's own code runs: a
 * dialog with the chapter list (or the page contents) below 992 px, collapsing the
 * sidebar above it. */
document.addEventListener(
  "click",
  (event) => {
    for (const kind of ["primary", "secondary"]) {
      const clicked = event.target.closest(`.${kind}-toggle`);
      const bound = document.querySelector(`.${kind}-toggle`);
      if (clicked && bound && clicked !== bound) {
        event.preventDefault();
        event.stopPropagation();
        bound.click();
        return;
      }
    }
  },
  true,
);

/* 2. Search snippets.  Sphinx cuts each result's snippet from the text of the page, where
 * math is still its TeX source ("\(q_i \cdot a_{\clip(j-i)}\)") and the solutions are
 * folded-away text.  Snippets here drop the solutions and the displayed equations and
 * write inline math as plain text (q_i · a_clip(j-i)). */
const TEX_WORDS = {
  alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", theta: "θ", lambda: "λ",
  mu: "μ", pi: "π", sigma: "σ", tau: "τ", phi: "φ", omega: "ω", ell: "ℓ", Sigma: "Σ",
  sum: "Σ", prod: "Π", cdot: "·", times: "×", le: "≤", leq: "≤", ge: "≥", geq: "≥",
  ne: "≠", neq: "≠", in: "∈", infty: "∞", to: "→", rightarrow: "→", approx: "≈",
  pm: "±", R: "ℝ", softmax: "softmax", clip: "clip", top: "ᵀ", lvert: "|", rvert: "|",
  ldots: "…", dots: "…", quad: " ", qquad: " ",
};

function texToText(tex) {
  return tex
    .replace(/^\\\(|\\\)$/g, "")
    .replace(/\\(?:operatorname|mathrm|text|mathbf|mathit|mathbb|mathcal)\s*\{([^{}]*)\}/g,
             (m, body) => (body === "R" && m.includes("mathbb") ? "ℝ" : body))
    .replace(/\\([A-Za-z]+)/g, (m, word) => (word in TEX_WORDS ? TEX_WORDS[word] : word))
    .replace(/\\[,;:! ]/g, " ")
    .replace(/[{}]/g, "")
    .replace(/\s+/g, " ")
    .trim();
}

function readableForSearch(htmlString) {
  const page = new DOMParser().parseFromString(htmlString, "text/html");
  page.querySelectorAll(".solution, div.math").forEach((e) => e.remove());
  page.querySelectorAll("span.math").forEach((e) => {
    e.replaceWith(page.createTextNode(texToText(e.textContent)));
  });
  return page.documentElement.outerHTML;
}

document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined" || !Search.htmlToText) return;
  const htmlToText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => htmlToText(readableForSearch(htmlString), anchor);
});
