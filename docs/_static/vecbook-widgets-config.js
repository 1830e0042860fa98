// Where the widget renderer finds widget modules and its own fonts: next to this file, never on a CDN.
// Loaded after require.js and before @jupyter-widgets/html-manager's embed-amd.js (docs/conf.py).
(function () {
  var script = document.currentScript;
  var base = new URL("vecbook-widgets/", script.src).href;
  window.requirejs.config({
    paths: {
      // anywidget (plotly's FigureWidget is one): html-manager's loader asks require.js for it first.
      anywidget: base + "anywidget/index",
      // The modules embed-amd.js defines (@jupyter-widgets/html-manager, base, controls...) take the folder
      // of their require.js URL as the place of their fonts and icons: make that html-manager's own folder.
      "@jupyter-widgets": base + "html-manager",
    },
    // A big page on a busy machine can take longer than require.js's default 7 s to load a module.
    waitSeconds: 120,
  });
  // For any other module html-manager falls back to "<cdn><name>@<version>/dist/index.js"; it reads the
  // data-jupyter-widgets-cdn attribute of the page's script tags when it loads: a local folder here.
  script.setAttribute("data-jupyter-widgets-cdn", base + "cdn/");
  window.__jupyter_widgets_assets_path__ = base + "html-manager/";
})();
