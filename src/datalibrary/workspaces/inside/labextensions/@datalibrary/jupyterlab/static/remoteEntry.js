// DataLibrary's JupyterLab plugins, as a module-federation container JupyterLab loads like any
// prebuilt extension (window._JUPYTERLAB[name] with init and get). Written by hand: it uses
// only the application object JupyterLab passes to activate, no shared package, so there is
// nothing to bundle and no build step.
(function () {
  'use strict';
  var NAME = '@datalibrary/jupyterlab';
  var LAUNCHER = 'launcher:create';

  // A URL naming a file (/lab/tree/<path>) opens that file: no launcher then.
  function treePath() {
    var element = document.getElementById('jupyter-config-data');
    try {
      return JSON.parse(element ? element.textContent : '{}').treePath || '';
    } catch (error) {
      return '';
    }
  }

  // JupyterLab opens its launcher only after the URL's route has finished, and that route
  // waits for the workspace state to be saved back (a 500 ms debouncer that every state change
  // during the restore re-arms): about 0.9 s after the layout is on screen with nothing to do.
  // The launcher is opened here as soon as the layout is restored, when the main area is
  // empty; JupyterLab's own check then finds it open and adds no second one.
  var launcherOnRestore = {
    id: NAME + ':launcher-on-restore',
    description: 'Opens the launcher as soon as the layout is restored, when nothing else is open.',
    autoStart: true,
    activate: function (app) {
      if (treePath()) {
        return;
      }
      app.restored
        .then(function () {
          var shell = app.shell;
          if (typeof shell.isEmpty === 'function' && shell.isEmpty('main') && app.commands.hasCommand(LAUNCHER)) {
            return app.commands.execute(LAUNCHER);
          }
        })
        .catch(function (reason) {
          console.warn(NAME + ': the launcher could not be opened early', reason);
        });
    }
  };

  var extension = { __esModule: true, default: [launcherOnRestore] };
  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    init: function () {},
    get: function (request) {
      if (request !== './extension') {
        return Promise.reject(new Error(NAME + ' has no module ' + request));
      }
      return Promise.resolve(function () {
        return extension;
      });
    }
  };
})();
