// Loads the demo's ES modules from mosquitto's http_dir.
//
// mosquitto serves files without a Content-Type header, and browsers refuse
// to run a module script that does not come with a JavaScript MIME type
// (classic scripts like this one are still allowed). So this script fetches
// the modules itself, hands them to the module loader as blobs typed
// text/javascript, and maps the bare names they import ("mqtt", "mqlock")
// with an import map. Served by any ordinary web server it works the same.
(function () {
	'use strict';

	var modules = { mqtt: 'mqtt.esm.js', mqlock: 'mqlock.js' };
	var main = 'demo.js';

	function blobUrl(file) {
		return fetch(file, { cache: 'no-cache' }).then(function (r) {
			if (!r.ok) {
				throw new Error(file + ': HTTP ' + r.status);
			}
			return r.text();
		}).then(function (text) {
			return URL.createObjectURL(new Blob([text], { type: 'text/javascript' }));
		});
	}

	function fail(err) {
		document.body.dataset.state = 'error';
		var el = document.getElementById('status');
		if (el) {
			el.textContent = 'Could not start the editor: ' + err.message;
		}
		console.error(err);
	}

	var names = Object.keys(modules);
	Promise.all(names.map(function (n) {
		return blobUrl(modules[n]);
	}).concat([blobUrl(main)])).then(function (urls) {
		var imports = {};
		names.forEach(function (n, i) {
			imports[n] = urls[i];
		});
		// Must be in the document before the first module import.
		var map = document.createElement('script');
		map.type = 'importmap';
		map.textContent = JSON.stringify({ imports: imports });
		document.head.appendChild(map);
		return import(urls[urls.length - 1]);
	}).catch(fail);
})();
