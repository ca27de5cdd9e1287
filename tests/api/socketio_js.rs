//! Placeholder: filled in by the JS socket.io-client test.
