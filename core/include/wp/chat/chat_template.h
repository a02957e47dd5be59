// Placeholder: the chat-template interpreter is being written (see core/src/chat/).
#pragma once
