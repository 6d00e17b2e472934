// Loads the demo's ES modules from mosquitto's http_dir.
//
// mosquitto serves files without a Content-Type header, and browsers refuse
// to run a module script that does not come with a JavaScript MIME type
// (classic scripts like this one are still allowed). So this script fetches
// the modules itself, hands them to the module loader as blobs typed
// text/javascript, and maps the bare names they import ("mqtt", "mqlock",
// "mqlock/element") with an import map. Served by any ordinary web server,
// an import map with the files' own URLs is all a page needs.
(function () {
	'use strict';

	var modules = { mqtt: 'mqtt.esm.js', mqlock: 'mqlock.js', 'mqlock/element': 'mqlock-lock.js' };
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
		var el = document.getElementById('start-error');
		if (el) {
			el.textContent = 'Could not start the editor: ' + err.message;
			el.hidden = false;
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
