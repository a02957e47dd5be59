// Placeholder: the chat-template interpreter is being written.
