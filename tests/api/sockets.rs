//! Socket.IO tests with rust_socketio.
