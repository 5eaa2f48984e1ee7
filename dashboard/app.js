document.getElementById('app').textContent = 'sessiond';
